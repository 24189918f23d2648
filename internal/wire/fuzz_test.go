package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// The fuzz targets below run their seed corpus in every `go test`. To fuzz:
//
//	go test -run x -fuzz FuzzDecodeEntry -fuzztime 30s ./internal/wire

func FuzzDecodeEntry(f *testing.F) {
	for _, tc := range testEntries {
		if enc := wire.AppendEntry(nil, &tc.entry); len(enc) < 4096 {
			f.Add(enc)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{wire.FormatVersion})
	f.Add([]byte{wire.FormatVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := wire.DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("DecodeEntry error %v does not wrap ErrCorruption", err)
			}
			return
		}
		// What decodes re-encodes to something that decodes the same.
		enc := wire.AppendEntry(nil, &e)
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
		e2, err := wire.DecodeEntry(enc)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !sameEntry(&e, &e2) {
			t.Fatalf("round trip changed the entry: %+v -> %+v", e, e2)
		}
		if !bytes.Equal(wire.AppendEntry(nil, &e2), enc) {
			t.Fatal("encoding is not stable")
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	seeds := []argent.Batch{
		{},
		{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte("v")}}},
		{Conditions: []argent.Condition{{Key: []byte("c"), ModIndex: 7}}, Ops: []argent.Op{
			{Type: argent.OpDelete, Key: []byte("d")}, {Type: argent.OpDeletePrefix, Key: []byte("p/")},
		}},
	}
	for i := range seeds {
		f.Add(wire.AppendBatch(nil, &seeds[i]))
	}
	f.Add([]byte{})
	f.Add([]byte{wire.FormatVersion, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := wire.DecodeBatch(b)
		if err != nil {
			if !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("DecodeBatch error %v does not wrap ErrCorruption", err)
			}
			return
		}
		enc := wire.AppendBatch(nil, &bt)
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
		bt2, err := wire.DecodeBatch(enc)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !sameBatch(&bt, &bt2) {
			t.Fatalf("round trip changed the batch: %+v -> %+v", bt, bt2)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, fr := range testFrames() {
		if len(fr.payload) > 4096 {
			continue
		}
		one := wire.AppendFrame(nil, fr.typ, fr.payload)
		f.Add(one)
		stream = append(stream, one...)
	}
	f.Add(stream)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		// A small limit keeps a corrupt length from allocating much.
		const max = 1 << 16
		r := wire.NewReader(bytes.NewReader(b), max)
		rest := b
		for {
			typ, payload, err := r.ReadFrame()
			ptyp, ppayload, n, perr := wire.ParseFrame(rest, max)
			if err != nil {
				if err == io.EOF {
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes left", len(rest))
					}
				} else if !errors.Is(err, argent.ErrCorruption) {
					t.Fatalf("ReadFrame error %v does not wrap ErrCorruption", err)
				}
				if perr == nil {
					t.Fatalf("ParseFrame accepted what ReadFrame refused with %v", err)
				}
				if !errors.Is(perr, argent.ErrCorruption) {
					t.Fatalf("ParseFrame error %v does not wrap ErrCorruption", perr)
				}
				return
			}
			if perr != nil {
				t.Fatalf("ParseFrame refused what ReadFrame accepted: %v", perr)
			}
			if typ != ptyp || !bytes.Equal(payload, ppayload) || n != wire.HeaderSize+len(payload) {
				t.Fatal("ReadFrame and ParseFrame disagree")
			}
			if re := wire.AppendFrame(nil, typ, payload); !bytes.Equal(re, rest[:n]) {
				t.Fatal("re-framing an accepted frame gives other bytes")
			}
			rest = rest[n:]
		}
	})
}

// FuzzDecodePayloads feeds the same bytes to every other decoder.
func FuzzDecodePayloads(f *testing.F) {
	for _, fr := range testFrames() {
		if len(fr.payload) <= 4096 {
			f.Add(fr.payload)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("%s error %v does not wrap ErrCorruption", what, err)
			}
		}
		h, err := wire.DecodeHello(b)
		check("DecodeHello", err)
		if err == nil {
			if h2, err := wire.DecodeHello(h.Append(nil)); err != nil || h2 != h {
				t.Fatalf("Hello round trip: %+v -> %+v, %v", h, h2, err)
			}
		}
		hb, err := wire.DecodeHeartbeat(b)
		check("DecodeHeartbeat", err)
		if err == nil {
			if hb2, err := wire.DecodeHeartbeat(hb.Append(nil)); err != nil || hb2 != hb {
				t.Fatalf("Heartbeat round trip: %+v -> %+v, %v", hb, hb2, err)
			}
		}
		_, err = wire.DecodeTooOld(b)
		check("DecodeTooOld", err)
		sh, err := wire.DecodeSnapshotHeader(b)
		check("DecodeSnapshotHeader", err)
		if err == nil {
			if sh2, err := wire.DecodeSnapshotHeader(sh.Append(nil)); err != nil || sh2 != sh {
				t.Fatalf("SnapshotHeader round trip: %+v -> %+v, %v", sh, sh2, err)
			}
		}
		_, err = wire.DecodeSnapshotTrailer(b)
		check("DecodeSnapshotTrailer", err)
		var recs []argent.Item
		err = wire.DecodeSnapshotChunk(b, func(r argent.Item) error {
			recs = append(recs, r)
			return nil
		})
		check("DecodeSnapshotChunk", err)
		if err == nil {
			var enc []byte
			for i := range recs {
				enc = wire.AppendSnapshotRecord(enc, &recs[i])
			}
			if len(recs) == 0 {
				enc = []byte{wire.FormatVersion}
			}
			n := 0
			err := wire.DecodeSnapshotChunk(enc, func(r argent.Item) error {
				if !bytes.Equal(r.Key, recs[n].Key) || r.ModIndex != recs[n].ModIndex || !bytes.Equal(r.Value.Value, recs[n].Value.Value) {
					t.Fatalf("record %d changed in a round trip", n)
				}
				n++
				return nil
			})
			if err != nil || n != len(recs) {
				t.Fatalf("chunk round trip: %d of %d records, %v", n, len(recs), err)
			}
		}
	})
}
