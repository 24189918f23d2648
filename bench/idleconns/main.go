// Command idleconns measures what idle client connections cost a node:
// the resident memory (RSS) of a root before and after N connections to
// one of its ports have each made one request and then stay open, idle, as
// a fleet's kept-alive clients do; and what opening them cost the node:
// connections (TLS: full handshakes) per second and the node's CPU time
// per connection. Each port gets a fresh root: the HTTP API and the RESP
// port, plain and over TLS (certificates of a CA made for the run, as
// `--tls-cert`, `--tls-key`, `--tls-ca`). Redis, which users would put
// behind the same clients, gets the same N connections in the same run,
// plain and over TLS.
//
//	cd bench && go run ./idleconns [-n 10000] [-tls=false]
//
// The results go to stdout as markdown, to the section of -docs between
// the idleconns markers, and as JSON to -results.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/publish"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// The markers of this program's section of docs/benchmarks.md.
const (
	markBegin = "<!-- idleconns:begin -->"
	markEnd   = "<!-- idleconns:end -->"
)

func main() { os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr)) }

// config is the command line.
type config struct {
	conns, dialers int
	tls            bool
	docs, results  string
	command        string // as the report shows it
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("idleconns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.conns, "n", 10000, "idle connections per port")
	fs.IntVar(&c.dialers, "dialers", 8, "connections opened at once")
	fs.BoolVar(&c.tls, "tls", true, "also measure the ports over TLS")
	fs.StringVar(&c.docs, "docs", benchnode.RepoPath("docs/benchmarks.md"), "markdown file whose idleconns section is replaced (empty: none)")
	fs.StringVar(&c.results, "results", benchnode.RepoPath("bench/results/idleconns-latest.json"), "JSON results file (empty: none)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.conns < 1 || c.dialers < 1 {
		return c, fmt.Errorf("-n and -dialers must be at least 1")
	}
	c.command = "cd bench && go run ./idleconns"
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		c.command += " " + a
	}
	return c, nil
}

func cli(args []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "idleconns: %v\n", err)
		return 2
	}
	res, err := run(context.Background(), cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "idleconns: %v\n", err)
		return 1
	}
	var md strings.Builder
	writeMarkdown(&md, res)
	return publish.Report{Name: "idleconns", Markdown: md.String(), Results: res, ResultsPath: cfg.results,
		DocsPath: cfg.docs, Begin: markBegin, End: markEnd}.Write(stdout, stderr)
}

// port is one port measured, on a process of its own.
type port struct {
	name string
	tls  bool
	// start starts the process and returns it with the address to
	// connect to.
	start func(ctx context.Context) (proc *benchnode.Proc, addr string, err error)
	// req is sent on each connection; the first line of the answer must
	// start with want.
	req, want string
}

const (
	httpReq, httpOK = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200"
	respReq, respOK = "PING\r\n", "+PONG"
)

func run(ctx context.Context, cfg config, log io.Writer) (*results, error) {
	res := &results{Started: time.Now(), Command: cfg.command, Conns: cfg.conns, Dialers: cfg.dialers,
		Machine: benchnode.DescribeMachine(ctx)}
	// Each port's connections are opened, measured and closed in turn:
	// this process and the node each hold n at a time. Raise the soft
	// file limit to the hard one; the nodes inherit it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	if lim.Max < uint64(cfg.conns+1024) {
		return nil, fmt.Errorf("the open files limit is %d; %d connections need %d", lim.Max, cfg.conns, cfg.conns+1024)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("raise the open files limit to %d: %w", lim.Cur, err)
	}
	dir, err := os.MkdirTemp("", "argent-idleconns-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := benchnode.BuildArgent(ctx, dir)
	if err != nil {
		return nil, err
	}
	c := &benchnode.Cluster{Bin: bin, Dir: dir}
	defer c.Close(false)

	var (
		nodeTLS  []string    // the nodes' TLS flags
		clientTC *tls.Config // this program's, as a client
		redisTLS []string    // Redis's TLS options
	)
	if cfg.tls {
		if nodeTLS, redisTLS, clientTC, err = makeTLS(filepath.Join(dir, "tls")); err != nil {
			return nil, err
		}
	}
	ports := []port{
		argentPort(c, "argent HTTP (fast lane)", "http", nil, nil, cfg.conns),
		argentPort(c, "argent RESP (event loops)", "resp", nil, nil, cfg.conns),
	}
	if cfg.tls {
		ports = append(ports,
			argentPort(c, "argent HTTP over TLS (fast lane)", "http", nodeTLS, clientTC, cfg.conns),
			argentPort(c, "argent RESP over TLS (a goroutine each)", "resp", nodeTLS, clientTC, cfg.conns))
	}
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		res.Notes = append(res.Notes, "redis-server is not installed (apt-get install redis-server): no peer figures")
	} else {
		ports = append(ports, redisPort(c, redis, "Redis RESP", nil, nil, cfg.conns))
		if cfg.tls {
			ports = append(ports, redisPort(c, redis, "Redis RESP over TLS", redisTLS, clientTC, cfg.conns))
		}
	}
	for _, p := range ports {
		fmt.Fprintf(log, "idleconns: %s: %d connections\n", p.name, cfg.conns)
		r, err := measurePort(ctx, p, cfg.conns, cfg.dialers, clientTC)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		res.Ports = append(res.Ports, r)
	}
	res.Machine.LoadEnd = benchnode.Loadavg()
	res.WallSeconds = time.Since(res.Started).Seconds()
	return res, nil
}

// makeTLS makes a CA and a certificate for the nodes and Redis in dir, and
// returns the nodes' flags, Redis's options and this program's client
// configuration: it checks the server's certificate against the CA,
// presents none (as a fleet's clients need not) and keeps no sessions, so
// that every connection makes a full handshake.
func makeTLS(dir string) (node, redis []string, client *tls.Config, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	ca, err := certs.New(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := ca.IssueFiles("server")
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := tlsconf.LoadClient(tlsconf.Files{CA: f.CA})
	if err != nil {
		return nil, nil, nil, err
	}
	client = cl.Client()
	client.ClientSessionCache = nil
	client.ServerName = "127.0.0.1"
	node = []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
	redis = []string{"--tls-cert-file", f.Cert, "--tls-key-file", f.Key, "--tls-ca-cert-file", f.CA, "--tls-auth-clients", "no"}
	return node, redis, client, nil
}

// argentPort is a fresh root measured on its HTTP listener ("http") or
// its RESP port ("resp"), with TLS when tlsFlags are given.
func argentPort(c *benchnode.Cluster, name, which string, tlsFlags []string, tc *tls.Config, n int) port {
	p := port{name: name, tls: tc != nil, req: httpReq, want: httpOK}
	if which == "resp" {
		p.req, p.want = respReq, respOK
	}
	p.start = func(ctx context.Context) (*benchnode.Proc, string, error) {
		addr, err := benchnode.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		respAddr, err := benchnode.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		dir, err := c.NewDir(procName(name))
		if err != nil {
			return nil, "", err
		}
		args := append([]string{"root", "--data", dir, "--listen", addr, "--resp-listen", respAddr,
			"--max-connections", fmt.Sprint(n + 100)}, tlsFlags...)
		target := addr
		if which == "resp" {
			target = respAddr
		}
		proc, err := c.StartProcess(ctx, benchnode.Spec{Name: procName(name), Bin: c.Bin, Args: args, Addr: addr,
			Ready: func(ctx context.Context) error { return probe(ctx, addr, tc, httpReq, httpOK) }})
		return proc, target, err
	}
	return p
}

// redisPort is a fresh Redis, persisting nothing, measured on its port:
// plain, or its TLS port when tlsOpts are given.
func redisPort(c *benchnode.Cluster, bin, name string, tlsOpts []string, tc *tls.Config, n int) port {
	p := port{name: name, tls: tc != nil, req: respReq, want: respOK}
	p.start = func(ctx context.Context) (*benchnode.Proc, string, error) {
		addr, err := benchnode.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		_, num, _ := net.SplitHostPort(addr)
		dir, err := c.NewDir(procName(name))
		if err != nil {
			return nil, "", err
		}
		args := []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--maxclients", fmt.Sprint(n + 100)}
		if tc == nil {
			args = append(args, "--port", num)
		} else {
			args = append(append(args, "--port", "0", "--tls-port", num), tlsOpts...)
		}
		proc, err := c.StartProcess(ctx, benchnode.Spec{Name: procName(name), Bin: bin, Args: args, Addr: addr,
			Ready: func(ctx context.Context) error { return probe(ctx, addr, tc, respReq, respOK) }})
		return proc, addr, err
	}
	return p
}

// procName is a port's name as a process and directory name.
func procName(port string) string {
	return strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(strings.ToLower(port))
}
