// Command fakeargent stands in for argent in the cluster package's tests. It
// takes the role as its first argument and the flags the harness passes,
// counts its starts in DATA/starts and serves GET /v1/status with that count
// as applied_index, so a test can tell that a restart kept the data directory.
// It exits 0 on SIGTERM unless --ignore-term is given. A root given --id and
// --peers reports a "group" in its status whose leader is member 1.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("fakeargent: usage: fakeargent ROLE --listen ADDR [--data DIR] [--upstream A,B]")
	}
	role := os.Args[1]
	fs := flag.NewFlagSet(role, flag.ExitOnError)
	listen := fs.String("listen", "", "address to serve on")
	data := fs.String("data", "", "data directory")
	upstream := fs.String("upstream", "", "upstream addresses")
	ignoreTerm := fs.Bool("ignore-term", false, "ignore SIGTERM")
	id := fs.Uint64("id", 0, "Raft ID in a root group")
	peers := fs.String("peers", "", "members of the root group, ID=ADDR,...")
	_ = fs.Bool("join", false, "wait to be added to a root group")
	_ = fs.Parse(os.Args[2:])

	starts := 0
	if *data != "" {
		path := filepath.Join(*data, "starts")
		b, _ := os.ReadFile(path)
		starts, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		starts++
		if err := os.WriteFile(path, []byte(strconv.Itoa(starts)), 0o644); err != nil {
			log.Fatal(err)
		}
	}

	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			fmt.Println("fakeargent: SIGTERM, exiting")
			os.Exit(0)
		}()
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("fakeargent: %s listening on %s, start %d\n", role, ln.Addr(), starts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		st := map[string]any{
			"role":          role,
			"node_id":       fmt.Sprintf("fake-%d", os.Getpid()),
			"applied_index": starts,
			"upstream":      *upstream,
			"extra":         "x",
		}
		if *id != 0 {
			st["group"] = groupStatus(*id, *peers)
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	log.Fatal(http.Serve(ln, mux))
}

// groupStatus is the status of member id of a group whose leader is member
// 1, at term 1.
func groupStatus(id uint64, peers string) map[string]any {
	state := "follower"
	if id == 1 {
		state = "leader"
	}
	var members []map[string]any
	for _, p := range strings.Split(peers, ",") {
		pid, addr, _ := strings.Cut(p, "=")
		n, _ := strconv.ParseUint(pid, 10, 64)
		members = append(members, map[string]any{"id": n, "addr": addr})
	}
	return map[string]any{"id": id, "leader": 1, "term": 1, "state": state, "commit": 7, "applied": 7, "members": members}
}
