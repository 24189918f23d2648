package lookup_test

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/lookup"
)

var benchKeys = flag.Int("lookup.benchkeys", 1_000_000, "keys in the store of BenchmarkServer_Filter")

// BenchmarkServer_Filter builds the filter of a store of -lookup.benchkeys
// keys (64-byte values): the first build (a counting pass and a building
// pass) and a rebuild after one write (one pass, sized from the last count).
func BenchmarkServer_Filter(b *testing.B) {
	f := newFixture(b, &lookup.Config{FilterMaxAge: -1})
	// Load the keys as a snapshot from a parent would come: far faster
	// than a million puts through Writers.
	r, err := f.st.BeginRestore(f.st.Dataset(), argent.State{Index: 1, Time: f.clock.Now().UnixNano()})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 64)
	for i := range *benchKeys {
		if err := r.Add(fmt.Appendf(nil, "svc/%07d/config", i), 1, value); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Finish(uint64(*benchKeys)); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("FirstBuild", func(b *testing.B) {
		for b.Loop() {
			srv, err := lookup.NewServer(f.st, &lookup.Config{FilterMaxAge: -1})
			if err != nil {
				b.Fatal(err)
			}
			enc, _, err := srv.Filter(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(enc)), "bytes")
		}
	})
	b.Run("Rebuild", func(b *testing.B) {
		if _, _, err := f.srv.Filter(ctx, 0); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			w := f.st.NewWriter()
			if _, err := w.Append([]argent.Op{put(fmt.Sprintf("extra/%d", i), "v")}, f.clock.Now()); err != nil {
				b.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, _, err := f.srv.Filter(ctx, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClient_Get is one miss resolved over loopback HTTP with a
// kept-alive connection: a present key and an absent one, as of the
// replica's index.
func BenchmarkClient_Get(b *testing.B) {
	f := newFixture(b, nil)
	at := f.write(put("present", "some config value"))
	c := f.client(nil)
	ctx := context.Background()
	for _, key := range []string{"present", "absent"} {
		b.Run(key, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.Get(ctx, []byte(key), at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Many100", func(b *testing.B) {
		keys := make([][]byte, 100)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "k/%d", i)
		}
		keys[0] = []byte("present")
		for b.Loop() {
			if _, err := c.GetMany(ctx, keys, at); err != nil {
				b.Fatal(err)
			}
		}
	})
}
