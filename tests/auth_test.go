package tests

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// The tokens of e2eRules.
const (
	e2eAdmin  = "admin-secret-0123456789"
	e2eDeploy = "deploy-secret-0123456789"
	e2eFresh  = "fresh-secret-0123456789"
)

const e2eRules = `
[[token]]
name = "admin"
secret = "` + e2eAdmin + `"
read = [""]
write = [""]

[[token]]
name = "deploy"
secret = "` + e2eDeploy + `"
read = ["app/"]
write = ["app/config/"]
`

// tokenClient returns a client of n that presents token ("" for none).
func tokenClient(t *testing.T, n *cluster.Node, token string) *client.Client {
	t.Helper()
	hc := client.NewHTTPClient()
	t.Cleanup(hc.CloseIdleConnections)
	c, err := client.New(n.Addr, client.WithHTTPClient(hc), client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAuth_E2E starts a root and a replica with --auth and checks, over
// HTTP and RESP, that requests without a token or with a wrong one get 401,
// a token outside its prefixes 403, each refusal changing nothing; that a
// write forwarded by the replica carries its writer's token to the root;
// that scans and watches show only readable keys; and that SIGHUP reloads
// the rules, keeping them on a bad file.
func TestAuth_E2E(t *testing.T) {
	skipShort(t)
	rules := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(rules, []byte(e2eRules), 0o600); err != nil {
		t.Fatal(err)
	}
	root := cluster.StartRoot(t, "--auth", rules)
	respAddr := cluster.FreeAddr(t)
	replica := cluster.StartReplica(t, []string{root.Addr}, "--auth", rules, "--resp-listen", respAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin := tokenClient(t, replica, e2eAdmin)
	// Written through the replica: it forwards the batch, and the admin's
	// token, to the root.
	seed, err := admin.Txn(ctx, argent.Batch{Ops: []argent.Op{
		{Type: argent.OpPut, Key: []byte("app/config/a"), Value: []byte("1")},
		{Type: argent.OpPut, Key: []byte("app/x"), Value: []byte("2")},
		{Type: argent.OpPut, Key: []byte("other/y"), Value: []byte("3")},
	}})
	if err != nil {
		t.Fatalf("seed through the replica: %v", err)
	}
	cluster.WaitApplied(t, replica, uint64(seed), 10*time.Second)
	at := client.ReadOptions{MinIndex: seed}

	deploy := tokenClient(t, replica, e2eDeploy)
	for _, n := range []*cluster.Node{root, replica} {
		none, wrong, dep := tokenClient(t, n, ""), tokenClient(t, n, "wrong-wrong-wrong-wrong"), tokenClient(t, n, e2eDeploy)
		for _, tc := range []struct {
			name   string
			call   func() error
			sent   error
			status int
		}{
			{"get without token", func() error { _, err := none.Get(ctx, []byte("app/x"), at); return err }, argent.ErrUnauthorized, 401},
			{"put without token", func() error { _, err := none.Put(ctx, []byte("app/config/a"), []byte("no")); return err }, argent.ErrUnauthorized, 401},
			{"get with a wrong token", func() error { _, err := wrong.Get(ctx, []byte("app/x"), at); return err }, argent.ErrUnauthorized, 401},
			{"put with a wrong token", func() error { _, err := wrong.Put(ctx, []byte("app/config/a"), []byte("no")); return err }, argent.ErrUnauthorized, 401},
			{"get another prefix", func() error { _, err := dep.Get(ctx, []byte("other/y"), at); return err }, argent.ErrForbidden, 403},
			{"put another prefix", func() error { _, err := dep.Put(ctx, []byte("other/y"), []byte("no")); return err }, argent.ErrForbidden, 403},
			{"put a read-only prefix", func() error { _, err := dep.Put(ctx, []byte("app/x"), []byte("no")); return err }, argent.ErrForbidden, 403},
			{"txn across prefixes", func() error {
				_, err := dep.Txn(ctx, argent.Batch{Ops: []argent.Op{
					{Type: argent.OpPut, Key: []byte("app/config/new"), Value: []byte("no")},
					{Type: argent.OpPut, Key: []byte("other/new"), Value: []byte("no")},
				}})
				return err
			}, argent.ErrForbidden, 403},
		} {
			err := tc.call()
			if !errors.Is(err, tc.sent) || statusOf(err) != tc.status {
				t.Errorf("%s: %s: %v, want %d %v", n.Name, tc.name, err, tc.status, tc.sent)
			}
		}
	}
	// Nothing refused changed anything, at the root or the replica.
	st := cluster.WaitApplied(t, replica, uint64(seed), 10*time.Second)
	if rs, err := root.Status(); err != nil || rs.AppliedIndex != uint64(seed) || st.AppliedIndex != uint64(seed) {
		t.Fatalf("applied index after refusals: root %+v %v, replica %d; want %d", rs, err, st.AppliedIndex, seed)
	}
	_, items, err := admin.MGet(ctx, [][]byte{[]byte("app/config/a"), []byte("app/x"), []byte("other/y"), []byte("app/config/new"), []byte("other/new")}, at)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"1", "2", "3", "", ""} {
		if got := string(items[i].Value); got != want || items[i].Absent != (want == "") {
			t.Errorf("%s = %q (absent %v), want %q", items[i].Key, got, items[i].Absent, want)
		}
	}

	// A permitted write through the replica reaches the root with the
	// writer's token.
	idx, err := deploy.Put(ctx, []byte("app/config/b"), []byte("b"))
	if err != nil {
		t.Fatalf("permitted write through the replica: %v", err)
	}
	at = client.ReadOptions{MinIndex: idx, Wait: 10 * time.Second}

	// A scan of every key shows only the token's.
	page, err := deploy.Scan(ctx, nil, nil, 100, at)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range page.Items {
		keys = append(keys, string(it.Key))
	}
	if want := []string{"app/config/a", "app/config/b", "app/x"}; !slices.Equal(keys, want) {
		t.Errorf("deploy's scan of every key = %q, want %q", keys, want)
	}

	// A watch of every key from the start shows only the token's ops.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	w, err := deploy.Watch(wctx, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for len(seen) < 3 {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("watch after %q: %v", seen, err)
		}
		for _, op := range ev.Ops {
			seen = append(seen, string(op.Key))
		}
	}
	w.Close()
	wcancel()
	if want := []string{"app/config/a", "app/x", "app/config/b"}; !slices.Equal(seen, want) {
		t.Errorf("deploy's watch of every key = %q, want %q", seen, want)
	}

	// RESP on the replica.
	rNone := redis.NewClient(&redis.Options{Addr: respAddr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
	rDeploy := redis.NewClient(&redis.Options{Addr: respAddr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1, Password: e2eDeploy})
	t.Cleanup(func() { rNone.Close(); rDeploy.Close() })
	if err := rNone.Get(ctx, "app/x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("RESP GET without AUTH: %v", err)
	}
	if v, err := rDeploy.Get(ctx, "app/x").Result(); err != nil || v != "2" {
		t.Errorf("RESP GET app/x = %q %v", v, err)
	}
	if err := rDeploy.Get(ctx, "other/y").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("RESP GET other/y: %v", err)
	}
	if err := rDeploy.Set(ctx, "other/y", "no", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("RESP SET other/y: %v", err)
	}
	if v, err := admin.Get(ctx, []byte("other/y"), at); err != nil || string(v.Value) != "3" {
		t.Errorf("other/y after the RESP refusal = %q %v", v.Value, err)
	}

	// The refusals are counted.
	m := doRaw(t, rawHTTP(t), http.MethodGet, replica.URL()+"/metrics", nil)
	var body strings.Builder
	body.Write(m.body)
	for _, series := range []string{
		`argent_auth_refused_total{proto="http",reason="missing"}`,
		`argent_auth_refused_total{proto="http",reason="forbidden"}`,
		`argent_auth_refused_total{proto="resp",reason="forbidden"}`,
	} {
		if !strings.Contains(body.String(), series+" ") || strings.Contains(body.String(), series+" 0\n") {
			t.Errorf("/metrics has no count of %s", series)
		}
	}

	// SIGHUP with a bad file keeps the rules; with a good one, a new token
	// works and a removed one stops.
	hup := func() {
		t.Helper()
		for _, n := range []*cluster.Node{root, replica} {
			if err := syscall.Kill(n.PID(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(rules, []byte("[[token]]\nname = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	time.Sleep(200 * time.Millisecond)
	if _, err := deploy.Get(ctx, []byte("app/x"), at); err != nil {
		t.Fatalf("after SIGHUP with a bad file: %v", err)
	}
	fresh := strings.Replace(e2eRules, e2eDeploy, e2eFresh, 1)
	if err := os.WriteFile(rules, []byte(fresh), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	freshC := tokenClient(t, replica, e2eFresh)
	cluster.WaitFor(t, 10*time.Second, func() error {
		_, err := freshC.Put(ctx, []byte("app/config/c"), []byte("c"))
		return err
	})
	if _, err := deploy.Get(ctx, []byte("app/x"), at); !errors.Is(err, argent.ErrUnauthorized) {
		t.Errorf("removed token after reload: %v", err)
	}
	if !root.Running() || !replica.Running() {
		t.Fatal("a node stopped on SIGHUP")
	}
}
