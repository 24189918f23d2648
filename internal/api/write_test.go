package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/apiwire"
)

func TestServer_Put(t *testing.T) {
	ts := newTestServer(t, smallLimits)
	for _, tt := range []struct {
		name  string
		path  string
		key   string
		value []byte
		body  func() *bytes.Reader
	}{
		{name: "Value", path: "/v1/kv/a", key: "a", value: []byte("hello")},
		{name: "EmptyValue", path: "/v1/kv/e", key: "e", value: []byte{}},
		{name: "BinaryValue", path: "/v1/kv/bin", key: "bin", value: []byte{0, 1, 2, 0xff}},
		{name: "ValueAtLimit", path: "/v1/kv/big", key: "big", value: bytes.Repeat([]byte("x"), 1024)},
		{name: "SlashEscaped", path: "/v1/kv/d%2Fk", key: "d/k", value: []byte("s")},
		{name: "KeyAtLimit", path: "/v1/kv/" + strings.Repeat("k", 16), key: strings.Repeat("k", 16), value: []byte("l")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.b.store.Applied()
			resp, body := ts.do(t, "PUT", tt.path, bytes.NewReader(tt.value))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := decodeJSON[apiwire.IndexResponse](t, body)
			if got.Index != before+1 || ts.b.store.Applied() != got.Index {
				t.Errorf("index = %d (applied %d), want %d", got.Index, ts.b.store.Applied(), before+1)
			}
			v, err := ts.b.store.Get(context.Background(), []byte(tt.key), got.Index)
			if err != nil || !bytes.Equal(v.Value, tt.value) || v.ModIndex != got.Index {
				t.Errorf("stored %q = %q at %d, %v; want %q at %d", tt.key, v.Value, v.ModIndex, err, tt.value, got.Index)
			}
		})
	}
	t.Run("Chunked", func(t *testing.T) {
		resp, body := ts.do(t, "PUT", "/v1/kv/c", chunked{strings.NewReader("streamed")})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if v, err := ts.b.store.Get(context.Background(), []byte("c"), ts.b.store.Applied()); err != nil || string(v.Value) != "streamed" {
			t.Errorf("c = %q, %v", v.Value, err)
		}
	})
}

func TestServer_Delete(t *testing.T) {
	ts := newTestServer(t)
	ts.b.commit(t, put("a", "1"))
	resp, body := ts.doString(t, "DELETE", "/v1/kv/a", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := decodeJSON[apiwire.IndexResponse](t, body); got.Index != 2 {
		t.Errorf("index = %d, want 2", got.Index)
	}
	if _, err := ts.b.store.Get(context.Background(), []byte("a"), 2); !errors.Is(err, argent.ErrNotFound) {
		t.Errorf("a after delete: %v", err)
	}
	// Deleting an absent key is a batch like any other.
	resp, body = ts.doString(t, "DELETE", "/v1/kv/never", "")
	if resp.StatusCode != 200 || decodeJSON[apiwire.IndexResponse](t, body).Index != 3 {
		t.Errorf("delete absent: %d %s", resp.StatusCode, body)
	}
}

func TestServer_Txn(t *testing.T) {
	ts := newTestServer(t)
	i1 := ts.b.commit(t, put("k", "v"), put("tmp/1", "x"), put("tmp/2", "y"), put("j", "z"))

	t.Run("Commit", func(t *testing.T) {
		body := fmt.Sprintf(`{"conditions":[{"key":"k","mod_index":%d},{"key":"new","mod_index":0}],`+
			`"ops":[{"op":"put","key":"k","value":"aGk="},{"op":"put","key":"new"},{"op":"delete","key":"j"},{"op":"delete_prefix","key":"tmp/"}]}`, i1)
		resp, b := ts.doString(t, "POST", "/v1/txn", body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		idx := decodeJSON[apiwire.IndexResponse](t, b).Index
		if idx != i1+1 {
			t.Fatalf("index = %d, want %d", idx, i1+1)
		}
		items, _, err := ts.b.store.Scan(context.Background(), nil, nil, 100, idx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, fmt.Sprintf("%s=%q@%d", it.Key, it.Value.Value, it.ModIndex))
		}
		want := fmt.Sprintf(`k="hi"@%d,new=""@%d`, idx, idx)
		if strings.Join(got, ",") != want {
			t.Errorf("state = %s, want %s", strings.Join(got, ","), want)
		}
	})
	for _, tt := range []struct {
		name string
		cond string
		key  string
		want argent.Index
		got  argent.Index
	}{
		{"WrongModIndex", `{"key":"k","mod_index":1}`, "k", 1, 2},
		{"MustBeAbsent", `{"key":"k","mod_index":0}`, "k", 0, 2},
		{"MustExist", `{"key":"nope","mod_index":2}`, "nope", 2, 0},
	} {
		t.Run("ConditionFailed"+tt.name, func(t *testing.T) {
			before := ts.b.store.Applied()
			resp, b := ts.doString(t, "POST", "/v1/txn", `{"conditions":[`+tt.cond+`],"ops":[{"op":"put","key":"k","value":"eA=="}]}`)
			if resp.StatusCode != http.StatusConflict {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			d := decodeError(t, resp, b)
			if d.Code != apiwire.CodeConditionFailed || d.Key != tt.key || d.Want == nil || *d.Want != tt.want || d.Got == nil || *d.Got != tt.got {
				t.Errorf("error = %s, want key %q want %d got %d", b, tt.key, tt.want, tt.got)
			}
			if !bytes.Contains(b, []byte(fmt.Sprintf(`"want":%d,"got":%d`, tt.want, tt.got))) {
				t.Errorf("error body %s does not spell out want and got", b)
			}
			if ts.b.store.Applied() != before {
				t.Errorf("applied moved from %d to %d on a failed condition", before, ts.b.store.Applied())
			}
		})
	}
}

// TestServer_WriteRedirect checks that a Backend can send writes elsewhere
// with a 307, which the client follows with the body.
func TestServer_WriteRedirect(t *testing.T) {
	root := newTestServer(t)
	replica := newTestServer(t)
	replica.b.writeFn = func(context.Context, argent.Batch) (argent.Index, error) {
		return 0, fmt.Errorf("forward: %w", &api.RedirectError{Addr: root.URL + "/"})
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("PUT", replica.URL+"/v1/kv/a%2Fb?x=1", strings.NewReader("v"))
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != root.URL+"/v1/kv/a%2Fb?x=1" {
		t.Fatalf("status %d Location %q, want 307 to %s/v1/kv/a%%2Fb?x=1", resp.StatusCode, resp.Header.Get("Location"), root.URL)
	}
	if d := decodeError(t, resp, body); d.Code != apiwire.CodeUnavailable {
		t.Errorf("code = %q, want unavailable", d.Code)
	}

	c, err := client.New(replica.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idx, err := c.Put(ctx, []byte("k"), []byte("followed"))
	if err != nil || idx != 1 {
		t.Fatalf("put through a redirect: %d, %v", idx, err)
	}
	if idx, err := c.Txn(ctx, argent.Batch{Ops: []argent.Op{put("t", "x")}}); err != nil || idx != 2 {
		t.Fatalf("txn through a redirect: %d, %v", idx, err)
	}
	if v, err := root.b.store.Get(context.Background(), []byte("k"), 2); err != nil || string(v.Value) != "followed" {
		t.Errorf("root has k = %q, %v", v.Value, err)
	}
	if replica.b.store.Applied() != 0 {
		t.Errorf("replica applied %d", replica.b.store.Applied())
	}
}
