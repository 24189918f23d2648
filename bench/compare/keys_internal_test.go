package main

import (
	"bytes"
	"testing"
)

func TestAppendKey(t *testing.T) {
	seen := make(map[string]bool)
	lengths := make(map[int]int)
	for _, ids := range [][2]int{{0, 20_000}, {maxKeyID - 1000, maxKeyID}} {
		for id := ids[0]; id < ids[1]; id++ {
			k := appendKey(nil, id)
			if len(k) < minKeyLen || len(k) > maxKeyLen || len(k) != keyLen(id) {
				t.Fatalf("key %d = %q: %d bytes, want %d in [%d, %d]", id, k, len(k), keyLen(id), minKeyLen, maxKeyLen)
			}
			for _, c := range k {
				if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '/') {
					t.Fatalf("key %d = %q holds %q", id, k, c)
				}
			}
			if seen[string(k)] {
				t.Fatalf("key %d = %q twice", id, k)
			}
			seen[string(k)] = true
			lengths[len(k)]++
		}
	}
	if len(lengths) != maxKeyLen-minKeyLen+1 {
		t.Errorf("%d distinct lengths, want every one of %d..%d", len(lengths), minKeyLen, maxKeyLen)
	}
	if got := keyString(7); got != string(appendKey([]byte("x"), 7)[1:]) || got[:11] != "k/00000007/" {
		t.Errorf("keyString(7) = %q", got)
	}
}

func TestRespKeyName(t *testing.T) {
	if got := respKeyName(12); got != "key:000000000012" || len(got) != minKeyLen {
		t.Errorf("respKeyName(12) = %q", got)
	}
}

func TestValuePool(t *testing.T) {
	p := newValuePool(256, 1)
	a, b := p.of(1), p.of(1)
	if len(a) != 256 || !bytes.Equal(a, b) {
		t.Fatalf("of(1) is %d bytes, or differs between calls", len(a))
	}
	if bytes.Equal(p.of(1), p.of(2)) {
		t.Error("keys 1 and 2 have the same value")
	}
	if q := newValuePool(256, 1); !bytes.Equal(q.of(5), p.of(5)) {
		t.Error("the same seed gave different values")
	}
}
