package negfilter_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/argent-kv/argent/internal/negfilter"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, must
// refuse with ErrCorrupt or ErrVersion, and what it accepts must encode back
// to the same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	for _, n := range []int{0, 1, 10, 64} {
		b, err := mustFilterNoT(uint(n+1), n).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("AGNF\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := negfilter.Decode(b)
		if err != nil {
			if !errors.Is(err, negfilter.ErrCorrupt) && !errors.Is(err, negfilter.ErrVersion) {
				t.Fatalf("Decode err = %v, want ErrCorrupt or ErrVersion", err)
			}
			return
		}
		again, err := g.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded filter: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		g.Add([]byte("k"))
		if !g.MayContain([]byte("k")) {
			t.Fatalf("decoded filter lost an Add")
		}
		_ = g.Stats()
	})
}

func mustFilterNoT(expected uint, n int) *negfilter.Filter {
	f := negfilter.New(expected, negfilter.DefaultFPRate)
	for i := range n {
		f.Add(presentKey(i))
	}
	return f
}
