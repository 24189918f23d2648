package pulltest

import (
	"bytes"
	"context"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/logstore"
)

// CheckSame fails unless got holds want's state: the same applied index
// and chain hash, the same dataset, the same value for every live key, and
// the same log entries where both still hold them.
func CheckSame(t testing.TB, got, want *kv.Store) {
	t.Helper()
	gs, ws := got.State(), want.State()
	if gs.Index != ws.Index || gs.Chain != ws.Chain {
		t.Fatalf("state: got index %d chain %x, want %d %x", gs.Index, gs.Chain[:8], ws.Index, ws.Chain[:8])
	}
	if got.Dataset() != want.Dataset() {
		t.Fatalf("dataset: got %s, want %s", got.Dataset(), want.Dataset())
	}
	wi, _, err := want.Scan(context.Background(), nil, nil, 1<<20, ws.Index)
	if err != nil {
		t.Fatalf("scan want: %v", err)
	}
	gi, _, err := got.Scan(context.Background(), nil, nil, 1<<20, gs.Index)
	if err != nil {
		t.Fatalf("scan got: %v", err)
	}
	if len(gi) != len(wi) {
		t.Fatalf("got %d keys, want %d", len(gi), len(wi))
	}
	for i := range wi {
		if !bytes.Equal(gi[i].Key, wi[i].Key) || !bytes.Equal(gi[i].Value.Value, wi[i].Value.Value) || gi[i].Value.ModIndex != wi[i].Value.ModIndex {
			t.Fatalf("key %d: got %q=%q@%d, want %q=%q@%d", i, gi[i].Key, gi[i].Value.Value, gi[i].Value.ModIndex,
				wi[i].Key, wi[i].Value.Value, wi[i].Value.ModIndex)
		}
	}
	from := max(got.LogFirst(), want.LogFirst())
	wantLog := ReadLog(t, want, from)
	gotLog := ReadLog(t, got, from)
	if len(gotLog) != len(wantLog) {
		t.Fatalf("log from %d: got %d entries, want %d", from, len(gotLog), len(wantLog))
	}
	for i := range wantLog {
		if !bytes.Equal(gotLog[i], wantLog[i]) {
			t.Fatalf("log entry %d differs", from+argent.Index(i))
		}
	}
}

// ReadLog returns the raw log entries of s from index from on.
func ReadLog(t testing.TB, s *kv.Store, from argent.Index) [][]byte {
	t.Helper()
	var out [][]byte
	for from <= s.Applied() {
		next, err := s.ReadLog(from, 1<<20, func(e *logstore.Entry) bool {
			out = append(out, bytes.Clone(e.Raw))
			return true
		})
		if err != nil {
			t.Fatalf("read log from %d: %v", from, err)
		}
		if next == from {
			break
		}
		from = next
	}
	return out
}
