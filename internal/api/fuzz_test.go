package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// The fuzz targets hold the hand-written JSON paths of the hot requests to
// encoding/json: what the fast parsers take, DecodeJSON reads the same, and
// what appendItemsJSON writes is encoding/json's bytes.

func FuzzParseTxnJSON(f *testing.F) {
	for _, s := range []string{
		`{"ops":[{"op":"put","key":"a","value":"aGk="}]}`,
		`{"conditions":[{"key":"a","mod_index":7}],"ops":[{"op":"delete","key":"a"}]}`,
		" { \"ops\" : [ { \"value\" : \"\" , \"key\" : \"é\" , \"op\" : \"put\" } ] , \"conditions\" : [ ] }\n",
		`{"ops":[],"conditions":[{"mod_index":0,"key":"k"}]}`,
		`{}`,
		`{"ops":[{"op":"put","key":"a","value":"aGk"}]}`,
		`{"ops":[{"op":"put","key":"a","value":null}]}`,
		`{"OPS":[]}`,
		`{"ops":[{"op":"put","op":"put","key":"a"}]}`,
		`{"conditions":[{"key":"a","mod_index":99999999999999999999}]}`,
		`{"ops":[{"op":"delete_prefix","key":"p/"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := parseTxnJSON(body)
		if !ok {
			return
		}
		var slow txnRequest
		if err := DecodeJSON(bytes.NewReader(body), &slow); err != nil {
			t.Fatalf("fast parser took %q, encoding/json refused it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\n fast %s\n slow %s", body, dump(fast), dump(slow))
		}
		// An accepted body that is a valid batch travels back through the
		// client's encoding to the same batch.
		b, err := fast.batch()
		if err != nil {
			return
		}
		req, err := apiwire.NewTxnRequest(b)
		if err != nil {
			t.Fatalf("batch %+v of a JSON body does not encode: %v", b, err)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back txnRequest
		if err := DecodeJSON(bytes.NewReader(enc), &back); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", enc, err)
		}
		b2, err := back.batch()
		if err != nil || !reflect.DeepEqual(normBatch(b), normBatch(b2)) {
			t.Fatalf("round trip of %q: %+v -> %s -> %+v, %v", body, b, enc, b2, err)
		}
	})
}

// normBatch makes empty and nil slices alike, as JSON does.
func normBatch(b argent.Batch) argent.Batch {
	if len(b.Conditions) == 0 {
		b.Conditions = nil
	}
	ops := make([]argent.Op, len(b.Ops))
	for i, op := range b.Ops {
		if len(op.Value) == 0 {
			op.Value = nil
		}
		ops[i] = op
	}
	b.Ops = ops
	return b
}

func FuzzParseKeysJSON(f *testing.F) {
	for _, s := range []string{
		`{"keys":["a","b/c"]}`,
		`{"keys":[]}`,
		" {\n\"keys\" : [ \"é\" ,\"x\"] } ",
		`{"keys":["a\"b"]}`,
		`{"Keys":["a"]}`,
		`{"keys":null}`,
		`{"keys":["a",]}`,
		"{\"keys\":[\"\xff\"]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, ok := parseKeysJSON(body)
		if !ok {
			return
		}
		var req apiwire.MGetRequest
		if err := DecodeJSON(bytes.NewReader(body), &req); err != nil {
			t.Fatalf("fast parser took %q, encoding/json refused it: %v", body, err)
		}
		if !reflect.DeepEqual(keys, req.Keys) {
			t.Fatalf("%q: fast %q, encoding/json %q", body, keys, req.Keys)
		}
	})
}

// FuzzAppendItemsJSON builds items from the input (keys and values cut at
// 0 bytes, absent when a value starts with 'A') and compares the encoding
// with encoding/json's, which must also decode back to the items.
func FuzzAppendItemsJSON(f *testing.F) {
	f.Add([]byte("a\x00hi\x00b\x00A\x00"), uint64(7), uint64(3), "next")
	f.Add([]byte("<&>\x00\xff\xfe\x00\"q\\\x00\t"), uint64(0), uint64(0), "")
	f.Add([]byte{}, uint64(1<<63), uint64(1), "é")
	f.Fuzz(func(t *testing.T, in []byte, index, mod uint64, next string) {
		parts := bytes.Split(in, []byte{0})
		items := []apiwire.Item{}
		for i := 0; i+1 < len(parts); i += 2 {
			it := apiwire.Item{Key: string(parts[i])}
			if v := parts[i+1]; len(v) > 0 && v[0] == 'A' {
				it.Absent = true
			} else {
				it.Value, it.ModIndex = v, argent.Index(mod+uint64(i))
			}
			items = append(items, it)
		}
		want, err := json.Marshal(apiwire.ScanPage{Index: argent.Index(index), Items: items, Next: next})
		if err != nil {
			t.Fatal(err)
		}
		got := appendItemsJSON(nil, argent.Index(index), items, next)
		if !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		var back apiwire.ScanPage
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s does not decode: %v", got, err)
		}
		if back.Index != argent.Index(index) || len(back.Items) != len(items) {
			t.Fatalf("decoded %d items at %d, want %d at %d", len(back.Items), back.Index, len(items), index)
		}
	})
}
