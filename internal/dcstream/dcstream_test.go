package dcstream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/dcstream"
)

func TestAppendLine_Format(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    dcstream.Miss
		want string
	}{
		{"Present", dcstream.Miss{Key: []byte("k"), Value: []byte("hi"), ModIndex: 7, Index: 123},
			`{"key":"aw==","value":"aGk=","mod_index":7,"absent":false,"index":123,"crc":2241945317}`},
		{"Absent", dcstream.Miss{Key: []byte("k"), Absent: true, Index: 123},
			`{"key":"aw==","mod_index":0,"absent":true,"index":123,"crc":162466461}`},
		{"EmptyValue", dcstream.Miss{Key: []byte{0, 0xff}, Value: []byte{}, ModIndex: 1, Index: 1},
			`{"key":"AP8=","value":"","mod_index":1,"absent":false,"index":1,"crc":2540826319}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := string(dcstream.AppendLine(nil, &tt.m))
			if got != tt.want+"\n" {
				t.Fatalf("AppendLine = %s, want %s", got, tt.want)
			}
			m, progress, err := dcstream.DecodeLine([]byte(got))
			if err != nil || progress {
				t.Fatalf("DecodeLine = %v, %v", progress, err)
			}
			if !bytes.Equal(m.Key, tt.m.Key) || !bytes.Equal(m.Value, tt.m.Value) || m.ModIndex != tt.m.ModIndex || m.Absent != tt.m.Absent || m.Index != tt.m.Index {
				t.Fatalf("DecodeLine = %+v, want %+v", m, tt.m)
			}
			if !m.Absent && m.Value == nil {
				t.Fatal("a present key decodes with a nil value")
			}
		})
	}
}

func TestDecodeLine_Refuses(t *testing.T) {
	for _, tt := range []struct{ name, line string }{
		{"NotJSON", `{"key":`},
		{"NoKey", `{"value":"aGk=","mod_index":1,"index":1}`},
		{"NoIndex", `{"key":"aw==","value":"aGk=","mod_index":1}`},
		{"AbsentWithValue", `{"key":"aw==","value":"aGk=","mod_index":0,"absent":true,"index":3}`},
		{"AbsentWithMod", `{"key":"aw==","mod_index":2,"absent":true,"index":3}`},
		{"PresentNoMod", `{"key":"aw==","value":"aGk=","mod_index":0,"index":3}`},
		{"ModPastIndex", `{"key":"aw==","value":"aGk=","mod_index":4,"index":3}`},
		{"BadBase64", `{"key":"!!","mod_index":0,"absent":true,"index":3}`},
		// Lines damaged in transit: each would decode to a valid miss.
		{"NoCRC", `{"key":"aw==","value":"aGk=","mod_index":7,"absent":false,"index":123}`},
		{"ValueChanged", `{"key":"aw==","value":"aWk=","mod_index":7,"absent":false,"index":123,"crc":2241945317}`},
		{"KeyChanged", `{"key":"bw==","value":"aGk=","mod_index":7,"absent":false,"index":123,"crc":2241945317}`},
		{"IndexChanged", `{"key":"aw==","value":"aGk=","mod_index":7,"absent":false,"index":122,"crc":2241945317}`},
		{"CRCChanged", `{"key":"aw==","value":"aGk=","mod_index":7,"absent":false,"index":123,"crc":2241945316}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := dcstream.DecodeLine([]byte(tt.line)); !errors.Is(err, dcstream.ErrMalformed) {
				t.Fatalf("DecodeLine(%s) = %v, want ErrMalformed", tt.line, err)
			}
		})
	}
	if _, progress, err := dcstream.DecodeLine([]byte(dcstream.ProgressLine)); err != nil || !progress {
		t.Fatalf("progress line = %v, %v", progress, err)
	}
}

// startHub serves a Hub on 127.0.0.1 until the test ends.
func startHub(t *testing.T, opts dcstream.HubOptions) (*dcstream.Hub, string) {
	t.Helper()
	h := dcstream.NewHub(opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return h, srv.URL
}

// waitFor polls f until it returns nil or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHub_SubscriberReceivesMisses(t *testing.T) {
	ds := argent.DatasetID{1}
	h, url := startHub(t, dcstream.HubOptions{Dataset: func() argent.DatasetID { return ds }})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		got  []dcstream.Miss
		done = make(chan error, 1)
	)
	go func() {
		done <- dcstream.SubscribeWith(ctx, url, &dcstream.SubscribeOptions{Dataset: ds}, func(m dcstream.Miss) {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		})
	}()
	waitFor(t, 5*time.Second, func() error {
		if n := h.Stats().Subscribers; n != 1 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	want := []dcstream.Miss{
		{Key: []byte("a"), Value: []byte("1"), ModIndex: 3, Index: 5},
		{Key: []byte("b"), Absent: true, Index: 5},
		{Key: []byte("c"), Value: bytes.Repeat([]byte("x"), 200<<10), ModIndex: 5, Index: 6},
	}
	for _, m := range want {
		h.Publish(m)
	}
	waitFor(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < len(want) {
			return fmt.Errorf("got %d misses", len(got))
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Subscribe after cancel = %v, want nil", err)
	}
	for i, m := range want {
		g := got[i]
		if !bytes.Equal(g.Key, m.Key) || !bytes.Equal(g.Value, m.Value) || g.Absent != m.Absent || g.ModIndex != m.ModIndex || g.Index != m.Index {
			t.Errorf("miss %d = %q %d %v %d, want %q %d %v %d", i, g.Key, g.ModIndex, g.Absent, g.Index, m.Key, m.ModIndex, m.Absent, m.Index)
		}
	}
	if st := h.Stats(); st.Published != 3 || st.Drops != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHub_RefusesOtherDataset(t *testing.T) {
	ours := argent.DatasetID{1}
	for _, tt := range []struct {
		name   string
		ours   argent.DatasetID
		theirs argent.DatasetID
	}{
		{"Mismatch", ours, argent.DatasetID{2}},
		{"HubHasNone", argent.DatasetID{}, ours},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, url := startHub(t, dcstream.HubOptions{Dataset: func() argent.DatasetID { return tt.ours }})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := dcstream.SubscribeWith(ctx, url, &dcstream.SubscribeOptions{Dataset: tt.theirs}, func(dcstream.Miss) {})
			if !errors.Is(err, argent.ErrUnavailable) {
				t.Fatalf("Subscribe = %v, want a refusal", err)
			}
		})
	}
}

// A subscriber that does not read loses the oldest misses; Publish never
// waits for it.
func TestHub_SlowSubscriberDrops(t *testing.T) {
	h, url := startHub(t, dcstream.HubOptions{BufferMisses: 16, BufferBytes: 1 << 20, WriteTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	block := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = dcstream.Subscribe(ctx, url, func(dcstream.Miss) { <-block })
	}()
	waitFor(t, 5*time.Second, func() error {
		if n := h.Stats().Subscribers; n != 1 {
			return fmt.Errorf("%d subscribers", n)
		}
		return nil
	})
	// 64 MiB in all: far more than socket buffers hold.
	val := bytes.Repeat([]byte("v"), 64<<10)
	start := time.Now()
	var slowest time.Duration
	for i := range 1024 {
		t0 := time.Now()
		h.Publish(dcstream.Miss{Key: fmt.Appendf(nil, "k%d", i), Value: val, ModIndex: 1, Index: 1})
		slowest = max(slowest, time.Since(t0))
	}
	if took := time.Since(start); took > 2*time.Second || slowest > 100*time.Millisecond {
		t.Fatalf("1024 publishes took %s (slowest %s): Publish waited for the subscriber", took, slowest)
	}
	waitFor(t, 5*time.Second, func() error {
		if st := h.Stats(); st.Drops == 0 {
			return fmt.Errorf("no drops yet: %+v", st)
		}
		return nil
	})
	close(block)
	cancel()
	<-done
}

func TestHub_ProgressLines(t *testing.T) {
	_, url := startHub(t, dcstream.HubOptions{Progress: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+dcstream.Path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get(dcstream.HeaderVersion) != dcstream.Version || resp.Header.Get("Content-Type") != dcstream.ContentType {
		t.Fatalf("headers %v", resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	for i := range 3 {
		if !sc.Scan() {
			t.Fatalf("stream ended after %d lines: %v", i, sc.Err())
		}
		if got := sc.Text() + "\n"; got != dcstream.ProgressLine {
			t.Fatalf("line %d = %q, want a progress line", i, got)
		}
	}
}

// A stream that goes quiet (no progress) ends the subscription.
func TestSubscribe_Stall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(dcstream.HeaderVersion, dcstream.Version)
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := dcstream.SubscribeWith(ctx, strings.TrimPrefix(srv.URL, "http://"), &dcstream.SubscribeOptions{StallTimeout: 100 * time.Millisecond}, func(dcstream.Miss) {})
	if !errors.Is(err, argent.ErrUnavailable) || time.Since(start) > 3*time.Second {
		t.Fatalf("Subscribe = %v after %s, want a stall within the timeout", err, time.Since(start))
	}
}
