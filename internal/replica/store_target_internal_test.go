package replica

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/testutil/pulltest"
	"github.com/argent-kv/argent/internal/wire"
)

// rootEntries returns the first n entries of a new root's log, and the
// root.
func rootEntries(t *testing.T, n int) ([]argent.Entry, *pulltest.Root) {
	t.Helper()
	r := pulltest.NewRoot(t, kv.Options{}, argent.DatasetID{})
	r.Write(t, "k", n)
	var out []argent.Entry
	for _, raw := range pulltest.ReadLog(t, r.Store, 1) {
		e, err := wire.DecodeEntry(bytes.Clone(raw))
		if err != nil {
			t.Fatalf("decode entry: %v", err)
		}
		out = append(out, e)
	}
	return out, r
}

// A group of entries applies as a whole or not at all: nothing is visible
// before Commit, a discarded group leaves no trace, and an entry that does
// not follow the last one (by index, or by chain hash) is refused with the
// error the Follower sorts it by.
func TestStoreTarget_Group(t *testing.T) {
	entries, r := rootEntries(t, 6)
	s := pulltest.NewStore(t, kv.Options{})
	tg := (*storeTarget)(New(s, Config{}))
	if err := tg.AdoptDataset(r.Dataset()); err != nil {
		t.Fatalf("adopt: %v", err)
	}

	g := tg.Begin()
	for i := range 3 {
		if err := g.AppendEntry(&entries[i]); err != nil {
			t.Fatalf("append %d: %v", entries[i].Index, err)
		}
	}
	if g.Len() != 3 || tg.Applied() != 0 {
		t.Fatalf("before commit: group of %d, applied %d; want 3, 0", g.Len(), tg.Applied())
	}
	if err := g.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	g.Discard() // safe after Commit
	if tg.Applied() != 3 {
		t.Fatalf("after commit: applied %d, want 3", tg.Applied())
	}

	g = tg.Begin()
	if err := g.AppendEntry(&entries[3]); err != nil {
		t.Fatalf("append 4: %v", err)
	}
	g.Discard()
	if tg.Applied() != 3 {
		t.Fatalf("after discard: applied %d, want 3", tg.Applied())
	}

	otherChain := entries[3]
	otherChain.Chain[0] ^= 1
	for _, tc := range []struct {
		name    string
		e       *argent.Entry
		wantErr error
	}{
		{name: "Gap", e: &entries[4], wantErr: argent.ErrCorruption},
		{name: "OtherHistory", e: &otherChain, wantErr: argent.ErrChainMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tg.Begin()
			defer g.Discard()
			if err := g.AppendEntry(tc.e); !errors.Is(err, tc.wantErr) {
				t.Errorf("append %d: got %v, want %v", tc.e.Index, err, tc.wantErr)
			}
		})
	}

	g = tg.Begin()
	for i := 3; i < 6; i++ {
		if err := g.AppendEntry(&entries[i]); err != nil {
			t.Fatalf("append %d: %v", entries[i].Index, err)
		}
	}
	if err := g.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	pulltest.CheckSame(t, s, r.Store)
}

// A replica of one dataset refuses to take another.
func TestStoreTarget_AdoptDataset(t *testing.T) {
	s := pulltest.NewStore(t, kv.Options{})
	tg := (*storeTarget)(New(s, Config{}))
	a, err := argent.ParseDatasetID(strings.Repeat("ab", 16))
	if err != nil {
		t.Fatal(err)
	}
	b, err := argent.ParseDatasetID(strings.Repeat("cd", 16))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.AdoptDataset(a); err != nil {
		t.Fatalf("adopt first: %v", err)
	}
	if err := tg.AdoptDataset(a); err != nil {
		t.Errorf("adopt the same again: %v", err)
	}
	if err := tg.AdoptDataset(b); !errors.Is(err, argent.ErrDatasetMismatch) {
		t.Errorf("adopt another: got %v, want %v", err, argent.ErrDatasetMismatch)
	}
	if tg.Dataset() != a {
		t.Errorf("dataset %s, want %s", tg.Dataset(), a)
	}
}
