// Package ui is the status page every node serves at /ui: one HTML file
// with its CSS and script inline, built into the binary, so that the page
// works on a node with no access to anything else. The script polls
// /ui/tree.json once a second; the node assembles that tree itself
// (statustree), so the browser talks to one node only and needs no CORS.
package ui

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/argent-kv/argent/internal/statustree"
)

// Paths the page and its data are served at.
const (
	PagePath = "/ui"
	TreePath = "/ui/tree.json"
)

//go:embed index.html
var page []byte

// Walker walks the tree below an address; *statustree.Walker is one.
type Walker interface {
	Walk(ctx context.Context, addr string) *statustree.Tree
}

// Register adds the page (GET /ui and /ui/) and the tree (GET
// /ui/tree.json, walked from self, the node's own address) to mux.
func Register(mux *http.ServeMux, self string, w Walker) {
	mux.HandleFunc("GET "+PagePath, servePage)
	mux.HandleFunc("GET "+PagePath+"/{$}", servePage)
	mux.HandleFunc("GET "+TreePath, func(rw http.ResponseWriter, r *http.Request) {
		tree := w.Walk(r.Context(), self)
		b, err := json.Marshal(tree)
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		if err != nil {
			rw.WriteHeader(http.StatusInternalServerError)
			_, _ = rw.Write([]byte(`{"error":{"code":"internal","message":"ui: encode the tree"}}`))
			return
		}
		_, _ = rw.Write(b)
	})
}

func servePage(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	// The page loads nothing from elsewhere.
	rw.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	_, _ = rw.Write(page)
}
