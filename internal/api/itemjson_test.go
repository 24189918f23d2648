package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"pgregory.net/rapid"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// keyGen draws keys that are mostly plain, sometimes with characters JSON
// escapes (quotes, HTML, control bytes, invalid UTF-8).
func keyGen() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.StringMatching(`[a-z0-9/._-]{0,20}`),
		rapid.String(),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
		rapid.SampledFrom([]string{`a"b`, `a\b`, "<&>", "tab\tx", "é", "\xff\xfe"}),
	)
}

// TestAppendItemsJSON_MatchesEncodingJSON checks the hand-written encoder
// byte for byte against encoding/json.
func TestAppendItemsJSON_MatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		items := rapid.SliceOf(rapid.Custom(func(t *rapid.T) apiwire.Item {
			if rapid.Bool().Draw(t, "absent") {
				return apiwire.Item{Key: keyGen().Draw(t, "key"), Absent: true}
			}
			return apiwire.Item{
				Key:      keyGen().Draw(t, "key"),
				Value:    rapid.SliceOf(rapid.Byte()).Draw(t, "value"),
				ModIndex: argent.Index(rapid.Uint64().Draw(t, "mod")),
			}
		})).Draw(t, "items")
		if items == nil {
			items = []apiwire.Item{}
		}
		index := argent.Index(rapid.Uint64().Draw(t, "index"))
		next := keyGen().Draw(t, "next")
		want, err := json.Marshal(apiwire.ScanPage{Index: index, Items: items, Next: next})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendItemsJSON(nil, index, items, next); !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		want, _ = json.Marshal(apiwire.MGetResponse{Index: index, Items: items})
		if got := appendItemsJSON(nil, index, items, ""); !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("mget: got  %s\nwant %s", got, want)
		}
	})
}

// TestParseKeysJSON_MatchesEncodingJSON checks that whatever the fast
// parser accepts, encoding/json (with DecodeJSON's rules) reads the same.
func TestParseKeysJSON_MatchesEncodingJSON(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, body []byte) {
		keys, ok := parseKeysJSON(body)
		if !ok {
			return
		}
		var req apiwire.MGetRequest
		if err := DecodeJSON(bytes.NewReader(body), &req); err != nil {
			t.Fatalf("fast parser took %q, encoding/json refused it: %v", body, err)
		}
		if len(keys) != len(req.Keys) {
			t.Fatalf("%q: fast %q, encoding/json %q", body, keys, req.Keys)
		}
		for i := range keys {
			if keys[i] != req.Keys[i] {
				t.Fatalf("%q: fast %q, encoding/json %q", body, keys, req.Keys)
			}
		}
	}
	for _, tt := range []struct {
		body string
		fast bool
	}{
		{`{"keys":["a","b/c"]}`, true},
		{" {\n \"keys\" : [ \"a\" , \"é\" ] }\n", true},
		{`{"keys":[]}`, true},
		{`{"keys":["a\"b"]}`, false},
		{`{"keys":null}`, false},
		{`{"KEYS":["a"]}`, false},
		{`{"keys":["a"],"x":1}`, false},
		{`{"keys":["a"]} x`, false},
		{"{\"keys\":[\"\xff\"]}", false},
		{`{"keys":["a",]}`, false},
	} {
		_, ok := parseKeysJSON([]byte(tt.body))
		if ok != tt.fast {
			t.Errorf("parseKeysJSON(%q) ok=%v, want %v", tt.body, ok, tt.fast)
		}
		check(t, []byte(tt.body))
	}
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOf(keyGen()).Draw(t, "keys")
		body, _ := json.Marshal(apiwire.MGetRequest{Keys: keys})
		if rapid.Bool().Draw(t, "mangle") && len(body) > 0 {
			i := rapid.IntRange(0, len(body)-1).Draw(t, "at")
			body[i] = rapid.Byte().Draw(t, "byte")
		}
		check(t, body)
	})
}
