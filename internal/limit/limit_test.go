package limit

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func refused(t *testing.T, reg *prometheus.Registry, limit string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "argent_limit_refused_total" && m.GetLabel()[0].GetValue() == limit {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no argent_limit_refused_total{limit=%q}", limit)
	return 0
}

func TestListener(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		reject func(net.Conn)
		want   string // what a refused client reads
	}{
		{"answered", 2, func(c net.Conn) { _, _ = io.WriteString(c, "-ERR max number of clients reached\r\n") }, "-ERR max number of clients reached\r\n"},
		{"closed", 2, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			ln := NewListener(inner, tc.max, tc.reject, NewRefusals(reg))
			defer ln.Close()
			accepted := make(chan net.Conn, 8)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}
			}()
			dial := func() net.Conn {
				t.Helper()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			var served []net.Conn
			for range tc.max {
				dial()
				select {
				case c := <-accepted:
					served = append(served, c)
				case <-time.After(5 * time.Second):
					t.Fatal("a connection within the bound was not accepted")
				}
			}
			if ln.Open() != tc.max {
				t.Fatalf("Open() = %d, want %d", ln.Open(), tc.max)
			}
			over := dial()
			_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(over)
			if err != nil {
				t.Fatalf("refused connection: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("refused connection read %q, want %q", got, tc.want)
			}
			if n := refused(t, reg, Connections); n != 1 {
				t.Errorf("argent_limit_refused_total{limit=connections} = %v, want 1", n)
			}
			// Closing one (twice: the place is freed once) lets the next in.
			served[0].Close()
			served[0].Close()
			dial()
			select {
			case c := <-accepted:
				c.Close()
			case <-time.After(5 * time.Second):
				t.Fatal("no connection accepted after one closed")
			}
			if ln.Open() != tc.max-1 {
				t.Fatalf("Open() = %d after closing two, want %d", ln.Open(), tc.max-1)
			}
			for _, c := range served[1:] {
				c.Close()
			}
		})
	}
}

func TestListenerUnbounded(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, 0, nil, nil)
	defer ln.Close()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	if ln.Open() != 3 {
		t.Fatalf("Open() = %d, want 3", ln.Open())
	}
}
