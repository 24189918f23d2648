package kv_test

import (
	"context"
	"testing"
	"time"

	"github.com/argent-kv/argent"
)

// TestWriter_EntryBuffersReused feeds a Writer entries whose value bytes
// are overwritten after each AppendEntry, as a stream reusing its frame
// buffer does, with the same key written by several entries of one
// Writer: the latest version, the history and the read cache must all hold
// the values as they were appended.
func TestWriter_EntryBuffersReused(t *testing.T) {
	src := mustOpen(t, t.TempDir(), nil)
	if _, err := src.InitDataset(); err != nil {
		t.Fatal(err)
	}
	var entries []argent.Entry
	for i, v := range []string{"one", "two", "three", "four"} {
		w := src.NewWriter()
		e, err := w.Append([]argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte(v)}}, time.Unix(int64(i+1), 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	dst := mustOpen(t, t.TempDir(), nil)
	if _, err := dst.AdoptDataset(src.Dataset()); err != nil {
		t.Fatal(err)
	}
	w := dst.NewWriter()
	buf := make([]byte, 16)
	for i := range entries {
		e := entries[i]
		n := copy(buf, e.Ops[0].Value)
		e.Ops = []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: buf[:n]}}
		if err := w.AppendEntry(&e); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXXXXXXXXXXXXX") // the stream reads its next frame
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"one", "two", "three", "four"} {
		v, err := dst.Get(context.Background(), []byte("k"), argent.Index(i+1))
		if err != nil || string(v.Value) != want {
			t.Errorf("Get(k) at %d = %q, %v; want %q", i+1, v.Value, err, want)
		}
	}
	// Twice: the second read comes from the read cache.
	for range 2 {
		if v, err := dst.Get(context.Background(), []byte("k"), 4); err != nil || string(v.Value) != "four" {
			t.Errorf("latest Get(k) = %q, %v; want four", v.Value, err)
		}
	}
}
