package negfilter_test

import (
	"fmt"
	"testing"

	"github.com/argent-kv/argent/internal/negfilter"
)

// presentKey and absentKey name disjoint key sets shaped like config keys.
func presentKey(i int) []byte { return fmt.Appendf(nil, "svc/%d/config/present", i) }
func absentKey(i int) []byte  { return fmt.Appendf(nil, "svc/%d/config/absent", i) }

// mustFilter returns a filter sized for expected keys with keys 0..n-1 of
// presentKey added and its index set to index.
func mustFilter(t testing.TB, expected uint, n int, index uint64) *negfilter.Filter {
	t.Helper()
	f := negfilter.New(expected, negfilter.DefaultFPRate)
	for i := range n {
		f.Add(presentKey(i))
	}
	f.SetIndex(argentIndex(index))
	return f
}

// mustMarshal encodes f or fails the test.
func mustMarshal(t testing.TB, f *negfilter.Filter) []byte {
	t.Helper()
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}
