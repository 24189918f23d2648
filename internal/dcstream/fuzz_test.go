package dcstream_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/argent-kv/argent/internal/dcstream"
)

// FuzzDecodeLine feeds DecodeLine a subscriber's input: it refuses with
// ErrMalformed or returns a miss that keeps the format's rules and that
// AppendLine writes as a line decoding to the same miss.
func FuzzDecodeLine(f *testing.F) {
	for _, m := range []dcstream.Miss{
		{Key: []byte("k"), Value: []byte("v"), ModIndex: 3, Index: 5},
		{Key: []byte("gone"), Absent: true, Index: 9},
		{Key: []byte{0, 0xff}, Value: []byte{}, ModIndex: 1, Index: 1},
	} {
		f.Add(dcstream.AppendLine(nil, &m))
	}
	for _, s := range []string{
		dcstream.ProgressLine,
		`{"key":"aw==","mod_index":2,"index":1}`,
		`{"key":"aw==","value":"dg==","absent":true,"index":1}`,
		`{"key":"","index":1}`,
		`{"key":"aw==","mod_index":1,"index":1,"progress":false,"extra":[1,2]}`,
		`{"key":"a","index":1}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, progress, err := dcstream.DecodeLine(b)
		if err != nil {
			if !errors.Is(err, dcstream.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if progress {
			if m.Key != nil || m.Index != 0 {
				t.Fatalf("a progress line with a miss: %+v", m)
			}
			return
		}
		switch {
		case len(m.Key) == 0, m.Index == 0:
			t.Fatalf("accepted a miss without a key or an index: %+v", m)
		case m.Absent && (m.Value != nil || m.ModIndex != 0):
			t.Fatalf("accepted an absent miss with a value: %+v", m)
		case !m.Absent && (m.Value == nil || m.ModIndex == 0 || m.ModIndex > m.Index):
			t.Fatalf("accepted a present miss without a value or with a bad mod index: %+v", m)
		}
		line := dcstream.AppendLine(nil, &m)
		m2, progress2, err := dcstream.DecodeLine(line)
		if err != nil || progress2 {
			t.Fatalf("re-encoded %s does not decode: progress=%v, %v", line, progress2, err)
		}
		if !bytes.Equal(m.Key, m2.Key) || !bytes.Equal(m.Value, m2.Value) || m.ModIndex != m2.ModIndex || m.Absent != m2.Absent || m.Index != m2.Index {
			t.Fatalf("round trip changed the miss: %+v -> %+v", m, m2)
		}
		if !bytes.Equal(dcstream.AppendLine(nil, &m2), line) {
			t.Fatal("encoding is not stable")
		}
	})
}
