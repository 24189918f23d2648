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

// TestKeyOrder checks that the encodings sort the way trims need: the h
// and t spaces by index first, then key; the log by index.
func TestKeyOrder(t *testing.T) {
	ordered := [][][]byte{
		{indexedKey(spaceHistory, 1, []byte("z")), indexedKey(spaceHistory, 2, []byte("a")), indexedKey(spaceHistory, 256, nil), indexedKey(spaceHistory, 256, []byte("a")), indexedBound(spaceHistory, 257)},
		{indexedKey(spaceTombstone, 1, []byte("z")), indexedBound(spaceTombstone, 1<<40), indexedKey(spaceTombstone, 1<<40, []byte("a"))},
		{logKey(1), logKey(2), logKey(255), logKey(256), logKey(1 << 40)},
	}
	for _, keys := range ordered {
		for i := 1; i < len(keys); i++ {
			if bytes.Compare(keys[i-1], keys[i]) >= 0 {
				t.Fatalf("%q does not sort before %q", keys[i-1], keys[i])
			}
		}
	}
}

func TestKeyParse(t *testing.T) {
	i, key, ok := parseIndexedKey(spaceTombstone, indexedKey(spaceTombstone, 7, []byte("key")))
	if !ok || i != 7 || string(key) != "key" {
		t.Fatalf("parseIndexedKey = %d %q %v", i, key, ok)
	}
	if _, _, ok := parseIndexedKey(spaceTombstone, []byte("t\x00")); ok {
		t.Fatal("parseIndexedKey accepted a short key")
	}
	if _, _, ok := parseIndexedKey(spaceTombstone, indexedKey(spaceHistory, 7, nil)); ok {
		t.Fatal("parseIndexedKey accepted a key of another space")
	}
	for _, want := range []version{
		{tombstone: true, mod: 42, prev: 7, value: []byte{}},
		{mod: 1, value: []byte("val")},
	} {
		v, ok := decodeVersion(encodeVersion(want))
		if !ok || v.tombstone != want.tombstone || v.mod != want.mod || v.prev != want.prev || !bytes.Equal(v.value, want.value) {
			t.Fatalf("decodeVersion(encodeVersion(%+v)) = %+v %v", want, v, ok)
		}
	}
	if _, ok := decodeVersion(make([]byte, 16)); ok {
		t.Fatal("decodeVersion accepted 16 bytes")
	}
	st := argent.State{Index: 9, Time: -1, Chain: argent.Hash{1, 2, 3}}
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
		{name: "LogEntryMissing", key: metaApplied, value: encodeState(&argent.State{Index: 5})},
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
