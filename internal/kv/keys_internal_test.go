package kv

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/argent-kv/argent"
)

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want []byte
	}{
		{name: "Empty", p: nil, want: nil},
		{name: "Simple", p: []byte("ab"), want: []byte("ac")},
		{name: "TrailingFF", p: []byte("a\xff"), want: []byte("b")},
		{name: "TrailingFFs", p: []byte("a\xff\xff"), want: []byte("b")},
		{name: "AllFF", p: []byte("\xff\xff"), want: nil},
		{name: "LatestSpace", p: latestKey(nil), want: []byte{spaceLatest + 1}},
		{name: "LatestFF", p: latestKey([]byte("\xff")), want: []byte{spaceLatest + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := prefixEnd(tc.p); !bytes.Equal(got, tc.want) {
				t.Fatalf("prefixEnd(%q) = %q, want %q", tc.p, got, tc.want)
			}
		})
	}
}

// TestKeyOrder checks that the encodings sort the way the reads need: the
// history of one key by mod index, apart from every other key's; the GC
// queue by superseding index; the log by index.
func TestKeyOrder(t *testing.T) {
	ordered := [][][]byte{
		{historyKey([]byte("a"), 1), historyKey([]byte("a"), 2), historyKey([]byte("a"), 256), historyKey([]byte("a"), 1<<40)},
		{historyKey([]byte("b"), 1<<40), historyKey([]byte("aa"), 0)}, // shorter keys first: no prefix overlap
		{gcKey(1, 5, []byte("z")), gcKey(2, 0, []byte("a")), gcKey(256, 1, []byte("a")), gcKey(256, 2, []byte("a"))},
		{logKey(1), logKey(2), logKey(255), logKey(256), logKey(1 << 40)},
	}
	for _, keys := range ordered {
		for i := 1; i < len(keys); i++ {
			if bytes.Compare(keys[i-1], keys[i]) >= 0 {
				t.Fatalf("%q does not sort before %q", keys[i-1], keys[i])
			}
		}
	}
	// The history range of "a" holds no version of "a\x00..." or "ab".
	lo, hi := historyKey([]byte("a"), 0), historyKey([]byte("a"), 1<<63)
	for _, k := range [][]byte{historyKey([]byte("ab"), 1), historyKey([]byte("a\x00"), 0), historyKey([]byte("b"), 0)} {
		if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
			t.Fatalf("%q falls in the history range of a", k)
		}
	}
}

func TestKeyParse(t *testing.T) {
	sup, mod, key, ok := parseGCKey(gcKey(7, 3, []byte("key")))
	if !ok || sup != 7 || mod != 3 || string(key) != "key" {
		t.Fatalf("parseGCKey = %d %d %q %v", sup, mod, key, ok)
	}
	if _, _, _, ok := parseGCKey([]byte("g\x00")); ok {
		t.Fatal("parseGCKey accepted a short key")
	}
	tm, size, kind, ok := parseGCValue(gcValue(-5, 99, gcKindTombstone))
	if !ok || tm != -5 || size != 99 || kind != gcKindTombstone {
		t.Fatalf("parseGCValue = %d %d %d %v", tm, size, kind, ok)
	}
	if i, ok := parseLogKey(logKey(1 << 33)); !ok || i != 1<<33 {
		t.Fatalf("parseLogKey = %d %v", i, ok)
	}
	if _, ok := parseLogKey([]byte("l\x00")); ok {
		t.Fatal("parseLogKey accepted a short key")
	}
	v, ok := decodeLatest(encodeLatest(true, 42, nil))
	if !ok || !v.tombstone || v.mod != 42 || len(v.value) != 0 {
		t.Fatalf("decodeLatest = %+v %v", v, ok)
	}
	v, ok = decodeLatest(encodeLatest(false, 1, []byte("val")))
	if !ok || v.tombstone || v.mod != 1 || string(v.value) != "val" {
		t.Fatalf("decodeLatest = %+v %v", v, ok)
	}
	if _, ok := decodeLatest([]byte{0, 1}); ok {
		t.Fatal("decodeLatest accepted 2 bytes")
	}
	st := State{Index: 9, Time: -1, Chain: argent.Hash{1, 2, 3}}
	if got, err := decodeState(encodeState(&st)); err != nil || *got != st {
		t.Fatalf("decodeState = %+v, %v", got, err)
	}
	if _, err := decodeState(make([]byte, 47)); !errors.Is(err, argent.ErrCorruption) {
		t.Fatalf("decodeState of 47 bytes: %v", err)
	}
}

// TestOpen_RefusesDamagedMeta checks that Open refuses another format
// version or a damaged applied state with ErrCorruption.
func TestOpen_RefusesDamagedMeta(t *testing.T) {
	tests := []struct {
		name  string
		key   []byte
		value []byte
	}{
		{name: "FormatVersion", key: metaFormat, value: putUint64(StoreFormatVersion + 1)},
		{name: "FormatLength", key: metaFormat, value: []byte{1}},
		{name: "AppliedLength", key: metaApplied, value: make([]byte, 10)},
		{name: "HorizonLength", key: metaHorizon, value: []byte{1, 2}},
		{name: "LogEntryMissing", key: metaApplied, value: encodeState(&State{Index: 5})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			s, err := Open("db", &Options{FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Set(tc.key, tc.value, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open("db", &Options{FS: fs})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("Open error = %v, want ErrCorruption", err)
			}
		})
	}
}
