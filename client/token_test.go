package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// TestWithToken checks that every kind of request carries the token, and
// that 401 and 403 answers map to their sentinels.
func TestWithToken(t *testing.T) {
	const token = "tok-0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Header.Get("Authorization") {
		case "":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"argent: unauthorized: a bearer token is required"}}`))
		case "Bearer " + token:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"code":"forbidden","message":"argent: forbidden: token \"t\" may not read key \"k\""}}`))
		default:
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	ctx := t.Context()
	with, err := client.New(srv.URL, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	without, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    *client.Client
		want error
	}{{with, argent.ErrForbidden}, {without, argent.ErrUnauthorized}} {
		calls := map[string]func() error{
			"get":  func() error { _, err := tc.c.Get(ctx, []byte("k"), client.ReadOptions{}); return err },
			"put":  func() error { _, err := tc.c.Put(ctx, []byte("k"), []byte("v")); return err },
			"mget": func() error { _, _, err := tc.c.MGet(ctx, [][]byte{[]byte("k")}, client.ReadOptions{}); return err },
			"scan": func() error { _, err := tc.c.Scan(ctx, []byte("k"), nil, 0, client.ReadOptions{}); return err },
			"watch": func() error {
				w, err := tc.c.Watch(ctx, []byte("k"), 0)
				if err == nil {
					w.Close()
				}
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", name, err, tc.want)
			}
		}
	}
}
