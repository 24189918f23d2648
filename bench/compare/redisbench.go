package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// rbResult is one redis-benchmark run, parsed from its --csv output.
type rbResult struct {
	ID string `json:"id"`
	// Target is "redis" (the Redis replica) or "argent" (the argent
	// replica's RESP port); for the durable SETs, "redis-aof" (Redis with
	// appendfsync always) or "argent-root" (a root alone's RESP port).
	Target string `json:"target"`
	// Test is "GET", "SET", or the custom command as redis-benchmark names it.
	Test     string   `json:"test"`
	Pipeline int      `json:"pipeline"`
	Clients  int      `json:"clients"`
	Requests int      `json:"requests"`
	Args     []string `json:"args"`
	// From the CSV line: requests per second and latencies in ms.
	RPS float64 `json:"rps"`
	Avg float64 `json:"avg_ms"`
	Min float64 `json:"min_ms"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	// KeysPerSec is RPS times the keys of one command.
	KeysPerSec float64 `json:"keys_per_sec,omitempty"`
	// ServerCores is the CPU of the server processes during the run;
	// Wall is the run's wall time in seconds.
	ServerCores float64 `json:"server_cores"`
	Wall        float64 `json:"wall_s"`
	// ServerErrors is what redis-benchmark printed about error replies.
	ServerErrors string `json:"server_errors,omitempty"`
}

// rbColumns are the columns of redis-benchmark 7's --csv output.
var rbColumns = []string{"test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_latency_ms"}

// parseRedisBenchmarkCSV reads the first result line of redis-benchmark
// --csv output into r's Test and figures.
func parseRedisBenchmarkCSV(out []byte, r *rbResult) error {
	rd := csv.NewReader(bytes.NewReader(out))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil {
		return fmt.Errorf("redis-benchmark csv: %w", err)
	}
	if len(recs) < 2 {
		return fmt.Errorf("redis-benchmark csv: %d lines, want a header and a result: %q", len(recs), out)
	}
	head, line := recs[0], recs[1]
	idx := make(map[string]int, len(head))
	for i, h := range head {
		idx[h] = i
	}
	vals := make([]float64, len(rbColumns))
	for i, col := range rbColumns {
		j, ok := idx[col]
		if !ok || j >= len(line) {
			return fmt.Errorf("redis-benchmark csv: no column %q in %q", col, head)
		}
		if i == 0 {
			continue
		}
		if vals[i], err = strconv.ParseFloat(line[j], 64); err != nil {
			return fmt.Errorf("redis-benchmark csv: column %s: %w", col, err)
		}
	}
	r.Test = line[idx["test"]]
	r.RPS, r.Avg, r.Min, r.P50, r.P95, r.P99, r.Max = vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7]
	return nil
}

// rbCommand is what one redis-benchmark run sends: "-t get", "-t set"
// with values of value bytes (-d), or a custom command of keys read
// MGET key:__rand_int__ ... with keys arguments.
type rbCommand struct {
	name  string // "get", "set" or "mget"
	keys  int    // keys per command
	value int    // bytes per SET value (-d); set only
}

// args returns redis-benchmark's arguments for cmd against port with the
// given pipeline depth, request count and key space.
func (cmd rbCommand) args(port string, clients, pipeline, requests, keyspace int) []string {
	a := []string{"-h", "127.0.0.1", "-p", port, "-c", strconv.Itoa(clients), "-n", strconv.Itoa(requests),
		"-r", strconv.Itoa(keyspace), "-P", strconv.Itoa(pipeline), "--csv"}
	switch cmd.name {
	case "get":
		return append(a, "-t", "get")
	case "set":
		return append(a, "-d", strconv.Itoa(cmd.value), "-t", "set")
	}
	a = append(a, "MGET")
	for range cmd.keys {
		a = append(a, "key:__rand_int__")
	}
	return a
}

// redisBenchmark runs bin once and returns its parsed result. It is bounded
// by timeout.
func redisBenchmark(ctx context.Context, bin string, args []string, pids []int, timeout time.Duration) (*rbResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu0 := benchnode.SampleCPU(pids)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	cpu := benchnode.CPUBetween(cpu0, benchnode.SampleCPU(pids))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, tail(stderr.String(), 500))
	}
	r := &rbResult{Args: args, Wall: wall.Seconds()}
	if err := parseRedisBenchmarkCSV(stdout.Bytes(), r); err != nil {
		return nil, err
	}
	if cpu.OK {
		for _, c := range cpu.PIDs {
			r.ServerCores += c
		}
	}
	if s := stderr.String(); strings.Contains(s, "Error") || strings.Contains(s, "ERR") {
		r.ServerErrors = tail(s, 300)
	}
	return r, nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// probe is the request count of the run that measures cmd's rate before
// the measured one: about a fraction of a second at the rates seen so far
// (durable SETs wait for an fsync, so they get fewer than GETs).
func (cmd rbCommand) probe(pipeline int) int {
	n := 20_000
	switch {
	case cmd.keys > 1:
		n = 2_000
	case cmd.name == "set":
		n = 5_000
	}
	if pipeline > 1 {
		n *= 5
	}
	return n
}

// calibrated runs cmd once with probe requests to measure its rate, then
// again with as many requests as take about d at that rate (the run the
// result is of). redis-benchmark has no duration flag, only a count.
func calibrated(ctx context.Context, bin string, cmd rbCommand, port string, clients, pipeline, keyspace int, d time.Duration, pids []int) (*rbResult, error) {
	probe := cmd.probe(pipeline)
	first, err := redisBenchmark(ctx, bin, cmd.args(port, clients, pipeline, probe, keyspace), pids, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	if first.RPS <= 0 {
		return nil, errors.New("redis-benchmark: probe run measured 0 requests/s")
	}
	n := int(min(50e6, max(float64(probe), first.RPS*d.Seconds())))
	r, err := redisBenchmark(ctx, bin, cmd.args(port, clients, pipeline, n, keyspace), pids, 10*d+time.Minute)
	if err != nil {
		return nil, err
	}
	r.Pipeline, r.Clients, r.Requests = pipeline, clients, n
	if cmd.keys > 1 {
		r.KeysPerSec = r.RPS * float64(cmd.keys)
	}
	return r, nil
}
