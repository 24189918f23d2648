// Command pprofnode runs one argent node exactly as `argent root` or
// `argent replica` would (same node.Config, default limits and windows), plus
// net/http/pprof on a separate address, so that a load test can take CPU and
// allocation profiles of the server without changing the server.
//
//	go run ./bench/pprofnode -role replica -data /tmp/rep -listen 127.0.0.1:7401 -upstream 127.0.0.1:7400 -pprof 127.0.0.1:6061
//	go tool pprof -top 'http://127.0.0.1:6061/debug/pprof/profile?seconds=10'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // the profile endpoints, on -pprof only
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent/internal/node"
)

func main() {
	role := flag.String("role", node.RoleReplica, "root or replica")
	data := flag.String("data", "", "data directory")
	listen := flag.String("listen", "127.0.0.1:7401", "node address")
	upstream := flag.String("upstream", "", "replica: parents, comma-separated")
	pprofAddr := flag.String("pprof", "127.0.0.1:6061", "address of the /debug/pprof endpoints")
	flag.Parse()

	cfg := node.Config{Role: *role, DataDir: *data, Listen: *listen,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if *upstream != "" {
		cfg.Upstreams = strings.Split(*upstream, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pprofnode: %v\n", err)
		os.Exit(1)
	}
	ps := &http.Server{Addr: *pprofAddr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := ps.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "pprofnode: pprof: %v\n", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "pprofnode: %s %s, pprof on %s\n", *role, n.Addr(), *pprofAddr)
	<-ctx.Done()
	_ = ps.Close()
	if err := n.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "pprofnode: close: %v\n", err)
		os.Exit(1)
	}
}
