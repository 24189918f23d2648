package lookup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
	"github.com/argent-kv/argent/internal/wirecheck"
)

// Over a link that flips bits in what the replica sends, every lookup,
// many-key lookup and scan page the client accepts is the truth: damaged
// answers are refused by their checksums (and reported), never returned.
// Each value names its key, so damage let through would show.
func TestClient_DamagingLink(t *testing.T) {
	f := newFixture(t, nil)
	value := func(k string) string { return strings.Repeat("value of "+k+";", 3) }
	var keys [][]byte
	for i := range 60 {
		k := fmt.Sprintf("k/%03d", i)
		keys = append(keys, []byte(k))
		f.write(put(k, value(k)))
	}
	at := f.write(del("k/007"))
	link := faultproxy.Start(t, f.hs.Listener.Addr().String())
	link.Seed(3)
	link.SetCorruptRate(0.3)
	var refused atomic.Int64
	c, err := lookup.NewClient(link.Addr(), &lookup.ClientOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DisableCompression: true}},
		OnCorrupt: func(_ *http.Request, err error) {
			if !errors.Is(err, wirecheck.ErrCorrupt) {
				t.Errorf("OnCorrupt with %v", err)
			}
			refused.Add(1)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(r lookup.Result) {
		t.Helper()
		want := f.states[at][string(r.Key)]
		switch {
		case r.Index != at:
			t.Fatalf("%s answered as of %d, asked as of %d", r.Key, r.Index, at)
		case r.Absent != (want.Value == nil):
			t.Fatalf("%s absent %v, want %v", r.Key, r.Absent, want.Value == nil)
		case !r.Absent && (string(r.Value.Value) != value(string(r.Key)) || r.Value.ModIndex != want.ModIndex):
			t.Fatalf("%s = %q@%d, want %q@%d", r.Key, r.Value.Value, r.Value.ModIndex, want.Value, want.ModIndex)
		}
	}
	// A damaged Content-Length can leave a read waiting for bytes that
	// never come: every call has a deadline, as a proxy's do.
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Second)
	}
	var accepted, failed int
	for round := range 8 {
		for _, k := range keys {
			ctx, cancel := call()
			r, err := c.Get(ctx, k, at)
			cancel()
			if err != nil {
				failed++
				continue
			}
			accepted++
			check(r)
		}
		ctx, cancel := call()
		rs, err := c.GetMany(ctx, keys, at)
		cancel()
		if err == nil {
			accepted++
			for _, r := range rs {
				check(r)
			}
		} else {
			failed++
		}
		ctx, cancel = call()
		items, _, err := c.Scan(ctx, []byte("k/"), nil, 100, at)
		cancel()
		if err != nil {
			failed++
			continue
		}
		accepted++
		if len(items) != len(keys)-1 {
			t.Fatalf("round %d: scan gave %d items, want %d", round, len(items), len(keys)-1)
		}
		for _, it := range items {
			if !bytes.Equal(it.Value.Value, []byte(value(string(it.Key)))) {
				t.Fatalf("scan: %s = %q", it.Key, it.Value.Value)
			}
		}
	}
	t.Logf("%d answers accepted, %d failed; %d chunks damaged, %d answers refused by checksum", accepted, failed, link.Stats().Corrupted, refused.Load())
	if link.Stats().Corrupted == 0 || refused.Load() == 0 || accepted == 0 {
		t.Fatalf("the test proved nothing: %d chunks damaged, %d refused, %d accepted", link.Stats().Corrupted, refused.Load(), accepted)
	}
}
