package ui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/statustree"
	"github.com/argent-kv/argent/internal/ui"
)

// fixedWalker answers every walk with one node, and records the address.
type fixedWalker struct{ from string }

func (w *fixedWalker) Walk(_ context.Context, addr string) *statustree.Tree {
	w.from = addr
	return &statustree.Tree{Time: 1, Roots: []*statustree.Node{{Addr: addr, Status: &client.Status{Role: "root", NodeID: "n1"}, Children: []*statustree.Node{}}}}
}

func TestRegister(t *testing.T) {
	w := &fixedWalker{}
	mux := http.NewServeMux()
	ui.Register(mux, "127.0.0.1:7400", w)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
		body         string // a substring of the body
	}{
		{"GET", "/ui", 200, "text/html; charset=utf-8", `fetch("/ui/tree.json"`},
		{"GET", "/ui/", 200, "text/html; charset=utf-8", "<title>argent status</title>"},
		{"HEAD", "/ui", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ui/tree.json", 200, "application/json", `"node_id":"n1"`},
		{"POST", "/ui", 405, "", ""},
		{"GET", "/ui/other", 404, "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(string(b), tc.body) {
				t.Errorf("body lacks %q:\n%.300s", tc.body, b)
			}
		})
	}
	if w.from != "127.0.0.1:7400" {
		t.Errorf("walked from %q, want the node's own address", w.from)
	}
}

// TestTreeJSON_Shape: the page reads these fields of /ui/tree.json.
func TestTreeJSON_Shape(t *testing.T) {
	b, err := json.Marshal((&fixedWalker{}).Walk(context.Background(), "a:1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"time_ms":`, `"roots":`, `"addr":`, `"status":`, `"children":`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("tree JSON lacks %s: %s", field, b)
		}
	}
}

// TestPage_NoOutsideAssets: the page loads nothing but /ui/tree.json.
func TestPage_NoOutsideAssets(t *testing.T) {
	mux := http.NewServeMux()
	ui.Register(mux, "x:1", &fixedWalker{})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/ui", nil))
	page := rec.Body.String()
	if m := regexp.MustCompile(`(?i)(src|href)\s*=|@import|https?://`).FindString(page); m != "" {
		t.Errorf("page refers to an outside asset: %q", m)
	}
}
