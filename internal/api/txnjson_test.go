package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestParseTxnJSON_MatchesEncodingJSON checks that whatever the fast parser
// accepts, encoding/json (with DecodeJSON's rules) reads the same, and that
// it takes the forms the clients send.
func TestParseTxnJSON_MatchesEncodingJSON(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, body []byte) bool {
		fast, ok := parseTxnJSON(body)
		if !ok {
			return false
		}
		var slow txnRequest
		if err := DecodeJSON(bytes.NewReader(body), &slow); err != nil {
			t.Fatalf("fast parser took %q, encoding/json refused it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\n fast %s\n slow %s", body, dump(fast), dump(slow))
		}
		return true
	}
	for _, tt := range []struct {
		body string
		fast bool
	}{
		{`{"ops":[{"op":"put","key":"a","value":"aGk="}]}`, true},
		{`{"conditions":[{"key":"a","mod_index":7}],"ops":[{"op":"delete","key":"a"}]}`, true},
		{" { \"ops\" : [ { \"value\" : \"\" , \"key\" : \"é\" , \"op\" : \"put\" } ] , \"conditions\" : [ ] }\n", true},
		{`{"ops":[],"conditions":[{"mod_index":0,"key":"k"}]}`, true},
		{`{}`, true},
		{`{"ops":[{"op":"put","key":"a","value":"aGk"}]}`, false},                // bad padding: encoding/json's error
		{`{"ops":[{"op":"put","key":"a","value":"aG\nk="}]}`, false},             // a control character
		{`{"ops":[{"op":"put","key":"a\"b","value":""}]}`, false},                // an escape
		{`{"ops":[{"op":"put","key":"a","value":null}]}`, false},                 // null
		{`{"ops":null}`, false},                                                  // null
		{`{"OPS":[]}`, false},                                                    // encoding/json folds case
		{`{"ops":[],"ops":[]}`, false},                                           // duplicate member
		{`{"ops":[{"op":"put","op":"put","key":"a"}]}`, false},                   // duplicate field
		{`{"ops":[{"op":"put","key":"a","x":1}]}`, false},                        // unknown field
		{`{"conditions":[{"key":"a","mod_index":1.0}]}`, false},                  // not a plain integer
		{`{"conditions":[{"key":"a","mod_index":-1}]}`, false},                   // negative
		{`{"conditions":[{"key":"a","mod_index":012}]}`, false},                  // leading zero
		{`{"conditions":[{"key":"a","mod_index":99999999999999999999}]}`, false}, // overflow
		{`{"ops":[]} x`, false},                                                  // trailing data
		{`{"ops":[],}`, false},                                                   // trailing comma
		{"{\"ops\":[{\"op\":\"put\",\"key\":\"\xff\"}]}", false},                 // invalid UTF-8
	} {
		if got := check(t, []byte(tt.body)); got != tt.fast {
			t.Errorf("parseTxnJSON(%q) ok=%v, want %v", tt.body, got, tt.fast)
		}
	}
	// Bodies as the clients write them: always the fast path.
	rapid.Check(t, func(t *rapid.T) {
		body := genTxnBody(t, false)
		if !check(t, body) {
			t.Fatalf("fast parser refused a client's body %q", body)
		}
	})
	// Bodies with noise: whatever the fast path takes, encoding/json reads
	// the same.
	rapid.Check(t, func(t *rapid.T) {
		check(t, genTxnBody(t, true))
	})
}

// genTxnBody draws a txn body as json.Marshal writes it, and with noise
// (whitespace, odd names, escapes, numbers, nulls, truncation) if asked.
func genTxnBody(t *rapid.T, noise bool) []byte {
	key := rapid.SampledFrom([]string{"a", "k/1", "é", "", "x y"})
	var b strings.Builder
	b.WriteString("{")
	n := 0
	member := func(name string, elems int, elem func(i int)) {
		if n > 0 {
			b.WriteString(",")
		}
		n++
		fmt.Fprintf(&b, "%q:[", name)
		for i := range elems {
			if i > 0 {
				b.WriteString(",")
			}
			elem(i)
		}
		b.WriteString("]")
	}
	if rapid.Bool().Draw(t, "conds") {
		member("conditions", rapid.IntRange(0, 3).Draw(t, "nconds"), func(int) {
			fmt.Fprintf(&b, `{"key":%q,"mod_index":%d}`, key.Draw(t, "ckey"), rapid.Uint64().Draw(t, "mod"))
		})
	}
	member("ops", rapid.IntRange(0, 4).Draw(t, "nops"), func(int) {
		switch rapid.IntRange(0, 2).Draw(t, "op") {
		case 0:
			v := rapid.SliceOfN(rapid.Byte(), 0, 20).Draw(t, "value")
			fmt.Fprintf(&b, `{"op":"put","key":%q,"value":%q}`, key.Draw(t, "key"), base64.StdEncoding.EncodeToString(v))
		case 1:
			fmt.Fprintf(&b, `{"op":"delete","key":%q}`, key.Draw(t, "key"))
		default:
			fmt.Fprintf(&b, `{"op":"delete_prefix","key":%q}`, key.Draw(t, "key"))
		}
	})
	b.WriteString("}")
	body := []byte(b.String())
	if !noise {
		return body
	}
	for range rapid.IntRange(1, 4).Draw(t, "edits") {
		i := rapid.IntRange(0, len(body)).Draw(t, "at")
		ins := rapid.SampledFrom([]string{" ", "\n", `"`, `\`, ",", "0", "null", "-", "}", "]", "A", "="}).Draw(t, "insert")
		if rapid.Bool().Draw(t, "cut") {
			body = body[:i]
		} else {
			body = append(body[:i:i], append([]byte(ins), body[i:]...)...)
		}
	}
	return body
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func BenchmarkTxnDecode(b *testing.B) {
	for _, size := range []int{256, 4096} {
		var buf bytes.Buffer
		buf.WriteString(`{"ops":[`)
		v := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), size))
		for i := range 1000 {
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"op":"put","key":"bench/key/%08d","value":"%s"}`, i, v)
		}
		buf.WriteString(`]}`)
		body := buf.Bytes()
		b.Run(fmt.Sprint("fast/", size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, ok := parseTxnJSON(body); !ok {
					b.Fatal("not parsed")
				}
			}
		})
		b.Run(fmt.Sprint("encoding_json/", size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var req txnRequest
				if err := DecodeJSON(bytes.NewReader(body), &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
