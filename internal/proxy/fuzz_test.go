package proxy_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/proxy"
	"github.com/argent-kv/argent/internal/window"
)

// FuzzServeL2 sends an owner L2 requests as a DC peer could: each gets a
// JSON error of status 4xx, or 200 with one item per key, and every item
// the owner vouches for is the key's true value at the index it names.
func FuzzServeL2(f *testing.F) {
	rng := rand.New(rand.NewPCG(31, 32))
	h := makeHistory(f, rng, 10, 10)
	r := newReplica(f, h, 10)
	d := newDC(f, h, 2, []string{r.addr}, 1<<20, window.Options{})
	apply(f, d.proxies[0], h, 10, rng)
	p := d.proxies[0]
	for _, s := range []struct {
		body string
		at   uint64
	}{
		{`{"keys":["azAwMQ==","azAwMg=="]}`, 10}, // k001, k002
		{`{"keys":["azAwMw=="]}`, 3},
		{`{"keys":["azAwMw==","bm9uZQ=="]}`, 1 << 40},
		{`{"keys":[]}`, 1},
		{`{"keys":[""]}`, 1},
		{`{"keys":["!"]}`, 1},
		{`{`, 1},
	} {
		f.Add([]byte(s.body), s.at)
	}
	type item struct {
		At       argent.Index `json:"at"`
		Value    []byte       `json:"value"`
		ModIndex argent.Index `json:"mod_index"`
		Absent   bool         `json:"absent"`
		Newer    bool         `json:"newer"`
	}
	f.Fuzz(func(t *testing.T, body []byte, at uint64) {
		req := httptest.NewRequest(http.MethodPost, proxy.L2Path+"?at="+strconv.FormatUint(at, 10), bytes.NewReader(body))
		rec := httptest.NewRecorder()
		p.ServeL2(rec, req)
		if rec.Code != http.StatusOK {
			var eb apiwire.ErrorBody
			if rec.Code < 400 || rec.Code >= 500 || json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error.Code == "" {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			return
		}
		var keys struct{ Keys [][]byte }
		if err := json.Unmarshal(body, &keys); err != nil {
			t.Fatalf("answered %q, which is not JSON: %v", body, err)
		}
		var ans struct {
			Index argent.Index `json:"index"`
			Items []item       `json:"items"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || len(ans.Items) != len(keys.Keys) {
			t.Fatalf("answer %s for %d keys: %v", rec.Body, len(keys.Keys), err)
		}
		for i, it := range ans.Items {
			if it.Newer {
				continue
			}
			if it.At == 0 || it.At > ans.Index || it.At > argent.Index(at) && it.At != ans.Index {
				t.Fatalf("item %d at %d, owner at %d, asked at %d", i, it.At, ans.Index, at)
			}
			want, ok := h.stateAt(it.At)[string(keys.Keys[i])]
			if it.Absent == ok || ok && string(it.Value) != want {
				t.Fatalf("key %q at %d: answered %+v, the history has %q (present %v)", keys.Keys[i], it.At, it, want, ok)
			}
		}
	})
}
