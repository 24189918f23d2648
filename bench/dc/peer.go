package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// tierRedis names the peer's reads in the light-load tables.
const tierRedis = "redis GET (peer)"

// redisPeer is a Redis holding the DC's keys: the peer of the light-load
// phases. One GET is one loopback round trip into one process, the least
// any read can cost on this machine at the same pace; a read at a proxy's
// L1 crosses one process, an L2 hit two.
type redisPeer struct {
	addr string
}

// startRedisPeer starts redis-server in c and writes the DC's keys into
// it, values of cfg.value bytes.
func startRedisPeer(ctx context.Context, c *benchnode.Cluster, cfg config) (*redisPeer, error) {
	p, err := benchnode.StartRedis(ctx, c, "", "redis", "--appendonly", "no")
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	w, r := bufio.NewWriter(conn), bufio.NewReader(conn)
	value := make([]byte, cfg.value)
	for i := range value {
		value[i] = 'v'
	}
	const pipeline = 1000
	for from := 0; from < cfg.keys; from += pipeline {
		to := min(from+pipeline, cfg.keys)
		for i := from; i < to; i++ {
			writeCommand(w, []byte("SET"), []byte(keyName(i)), value)
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		for i := from; i < to; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return nil, err
			}
			if line != "+OK\r\n" {
				return nil, fmt.Errorf("redis: SET %s: %q", keyName(i), line)
			}
		}
	}
	return &redisPeer{addr: p.Addr}, nil
}

// light reads n keys drawn from pop like lightLoad, with GET on one
// connection.
func (rp *redisPeer) light(ctx context.Context, pop *popularity, n int, rate float64, seed uint64, limit time.Duration) (*tally, error) {
	conn, err := net.Dial("tcp", rp.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	w, r := bufio.NewWriter(conn), bufio.NewReader(conn)
	return paced(ctx, pop, n, rate, seed, limit, func(_ int, key []byte) (int, string, error) {
		_ = conn.SetDeadline(time.Now().Add(readTimeout))
		writeCommand(w, []byte("GET"), key)
		if err := w.Flush(); err != nil {
			return 0, "", err
		}
		found, err := readBulk(r)
		if err != nil {
			return 0, "", err
		}
		if !found {
			return 404, tierRedis, nil
		}
		return 200, tierRedis, nil
	}), nil
}

// writeCommand writes a RESP array of bulk strings.
func writeCommand(w *bufio.Writer, args ...[]byte) {
	w.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		w.WriteString("$" + strconv.Itoa(len(a)) + "\r\n")
		w.Write(a)
		w.WriteString("\r\n")
	}
}

// readBulk reads a bulk string reply and says whether it was not nil.
func readBulk(r *bufio.Reader) (bool, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return false, err
	}
	if len(line) < 3 || line[0] != '$' {
		return false, fmt.Errorf("redis: reply %q, want a bulk string", line)
	}
	n, err := strconv.Atoi(line[1 : len(line)-2])
	if err != nil {
		return false, fmt.Errorf("redis: reply %q: %w", line, err)
	}
	if n < 0 {
		return false, nil
	}
	_, err = io.CopyN(io.Discard, r, int64(n)+2)
	return true, err
}

// waitQuiet waits until the processes pids together use less than
// maxCores of CPU over a second, for at most limit, so that a light load
// is measured on a machine its own DC leaves idle (the replay leaves
// compactions and evictions behind). It returns how long it waited and the
// last second's use.
func waitQuiet(ctx context.Context, pids []int, maxCores float64, limit time.Duration) (time.Duration, float64) {
	start := time.Now()
	used := 0.0
	for time.Since(start) < limit && ctx.Err() == nil {
		a := benchnode.SampleCPU(pids)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		u := benchnode.CPUBetween(a, benchnode.SampleCPU(pids))
		used = 0
		for _, c := range u.PIDs {
			used += c
		}
		if !u.OK || used < maxCores {
			break
		}
	}
	return time.Since(start), used
}
