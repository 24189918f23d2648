package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startEcho starts a loopback TCP server that echoes every byte back and
// closes its side after the client half-closes. It stops at t.Cleanup.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads back len(msg) bytes within 5 s.
func roundTrip(t *testing.T, c net.Conn, msg []byte) []byte {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return got
}

// waitFor polls f every 10 ms for up to 5 s.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after 5s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertClosed checks that c is closed by the other side within 5 s.
func assertClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read: got %v, want EOF or reset", err)
	}
}

func TestProxy_Forward(t *testing.T) {
	p := faultproxy.Start(t, startEcho(t))
	c := dial(t, p.Addr())

	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, many chunks
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		done <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c) // ends when the echo server closes after our half-close
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes back, want the %d sent, in order", len(got), len(msg))
	}
	st := p.Stats()
	if st.BytesUp != int64(len(msg)) || st.BytesDown != int64(len(msg)) || st.Conns != 1 || st.Corrupted != 0 {
		t.Fatalf("stats: got %+v, want %d bytes each way, 1 conn, 0 corrupted", st, len(msg))
	}
	waitFor(t, func() error {
		if n := p.Stats().Active; n != 0 {
			return errors.New("connection still active")
		}
		return nil
	})
}

func TestProxy_SetDelay(t *testing.T) {
	p := faultproxy.Start(t, startEcho(t))
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("warm"))

	const d = 100 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	roundTrip(t, c, []byte("ping"))
	if got := time.Since(start); got < 2*d {
		t.Fatalf("round trip took %v, want >= %v (delay each way)", got, 2*d)
	}

	t.Run("Pipelined", func(t *testing.T) {
		// 40 writes 5 ms apart with 50 ms each way: about 300 ms if chunks
		// overlap in flight, at least 2 s if the proxy moved one chunk per delay.
		p.SetDelay(50 * time.Millisecond)
		const n = 40
		msg := []byte("0123456789")
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			for range n {
				if _, err := c.Write(msg); err != nil {
					errc <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			errc <- nil
		}()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, n*len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if want := bytes.Repeat(msg, n); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if el := time.Since(start); el > 1200*time.Millisecond {
			t.Fatalf("took %v, want well under 2s: chunks are not pipelined", el)
		}
	})

	t.Run("Off", func(t *testing.T) {
		p.SetDelay(0)
		roundTrip(t, c, []byte("flush")) // may still carry chunks read under delay
		start := time.Now()
		roundTrip(t, c, []byte("ping"))
		if got := time.Since(start); got >= 2*d {
			t.Fatalf("round trip took %v after SetDelay(0), want < %v", got, 2*d)
		}
	})
}

func TestProxy_Cut(t *testing.T) {
	p := faultproxy.Start(t, startEcho(t))
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("ping"))

	p.Cut()
	assertClosed(t, c)

	refused := p.Stats().Refused
	c2 := dial(t, p.Addr()) // the kernel accepts; the proxy closes it at once
	assertClosed(t, c2)
	if got := p.Stats().Refused; got != refused+1 {
		t.Fatalf("Refused: got %d, want %d", got, refused+1)
	}

	p.Restore()
	c3 := dial(t, p.Addr())
	if got := roundTrip(t, c3, []byte("back")); string(got) != "back" {
		t.Fatalf("after Restore: got %q, want %q", got, "back")
	}
	if got := p.Stats().Conns; got != 2 {
		t.Fatalf("Conns: got %d, want 2", got)
	}
}

func TestProxy_Blackhole(t *testing.T) {
	p := faultproxy.Start(t, startEcho(t))
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("ping"))

	p.Blackhole()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.Read(make([]byte, 4))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read while blackholed: got %d bytes, err %v; want a timeout", n, err)
	}
	if st := p.Stats(); st.Active != 1 {
		t.Fatalf("Active while blackholed: got %d, want 1 (connection kept)", st.Active)
	}

	p.Restore()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read after Restore: %v", err)
	}
	if string(got) != "held" {
		t.Fatalf("after Restore: got %q, want the held %q", got, "held")
	}
}

func TestProxy_CorruptNext(t *testing.T) {
	p := faultproxy.Start(t, startEcho(t))
	p.Seed(1)
	c := dial(t, p.Addr())
	msg := bytes.Repeat([]byte{0x5a}, 256)

	p.CorruptNext(1)
	if got := bitDiff(roundTrip(t, c, msg), msg); got != 1 {
		t.Fatalf("first chunk: %d bits differ, want 1", got)
	}
	if got := bitDiff(roundTrip(t, c, msg), msg); got != 0 {
		t.Fatalf("second chunk: %d bits differ, want 0", got)
	}
	if got := p.Stats().Corrupted; got != 1 {
		t.Fatalf("Corrupted: got %d, want 1", got)
	}
}

func TestProxy_SetCorruptRate(t *testing.T) {
	tests := []struct {
		name     string
		prob     float64
		wantBits int // bits flipped in each chunk
	}{
		{name: "Always", prob: 1, wantBits: 1},
		{name: "Never", prob: 0, wantBits: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := faultproxy.Start(t, startEcho(t))
			p.SetCorruptRate(tt.prob)
			c := dial(t, p.Addr())
			msg := []byte("the quick brown fox")
			for i := range 5 {
				if got := bitDiff(roundTrip(t, c, msg), msg); got != tt.wantBits {
					t.Fatalf("chunk %d: %d bits differ, want %d", i, got, tt.wantBits)
				}
			}
			if got, want := p.Stats().Corrupted, int64(5*tt.wantBits); got != want {
				t.Fatalf("Corrupted: got %d, want %d", got, want)
			}
		})
	}
}

func TestProxy_UpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now

	p := faultproxy.Start(t, addr)
	assertClosed(t, dial(t, p.Addr()))
	if st := p.Stats(); st.Refused != 1 || st.Conns != 0 {
		t.Fatalf("stats: got %+v, want 1 refused, 0 conns", st)
	}
}

func TestProxy_Close(t *testing.T) {
	// Registered first, so it runs after the echo server and the client
	// connections are gone.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	echo := startEcho(t)
	p, err := faultproxy.New(echo)
	if err != nil {
		t.Fatal(err)
	}
	// Leave connections in every state: idle, with delayed bytes in flight,
	// and blackholed.
	idle := dial(t, p.Addr())
	roundTrip(t, idle, []byte("ping"))
	p.SetDelay(time.Hour)
	busy := dial(t, p.Addr())
	if _, err := busy.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	p.Blackhole()
	held := dial(t, p.Addr())
	if _, err := held.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error {
		if n := p.Stats().Active; n != 3 {
			return errors.New("want 3 active connections")
		}
		return nil
	})

	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range []net.Conn{idle, busy, held} {
		assertClosed(t, c)
		_ = c.Close()
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("dial after Close succeeded, want refused")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dial after Close: %v, want refused", err)
	}
}

// bitDiff counts the bits that differ between a and b, which have equal length.
func bitDiff(a, b []byte) int {
	n := 0
	for i := range a {
		n += bits.OnesCount8(a[i] ^ b[i])
	}
	return n
}
