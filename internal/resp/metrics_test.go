package resp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/resp"
)

// TestMetrics checks the RESP port's metrics: open connections, commands
// by name, hand-offs to goroutines, and connections cut for bad input.
func TestMetrics(t *testing.T) {
	b := newFakeBackend(t, argent.Limits{})
	reg := prometheus.NewRegistry()
	s := resp.New(b, nil, reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	defer func() {
		s.Close()
		<-done
	}()
	c := newClient(t, ln.Addr().String())
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Get(ctx, "k").Err(); err != nil {
			t.Fatal(err)
		}
	}
	count := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				match := true
				for i := 0; i+1 < len(labels); i += 2 {
					found := false
					for _, lp := range m.GetLabel() {
						if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
							found = true
						}
					}
					match = match && found
				}
				if match {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no metric %s %v", name, labels)
		return 0
	}
	// go-redis may send commands of its own when it connects: count
	// "other" around one unknown command.
	other := count("argent_resp_commands_total", "command", "other")
	c.Do(ctx, "NOSUCH")
	raw(t, ln.Addr().String(), "*1\r\n+PING\r\n", false) // a protocol error
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"argent_resp_commands_total", []string{"command", "GET"}, 3},
		{"argent_resp_commands_total", []string{"command", "SET"}, 1},
		{"argent_resp_commands_total", []string{"command", "other"}, other + 1},
		{"argent_resp_goroutine_handoffs_total", nil, 1},
		{"argent_resp_cut_total", []string{"reason", "protocol_error"}, 1},
		{"argent_resp_connections", nil, 1}, // the go-redis client's
	} {
		if got := count(tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s %v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for count("argent_resp_connections") != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := count("argent_resp_connections"); got != 0 {
		t.Errorf("argent_resp_connections = %v after every client closed, want 0", got)
	}
}
