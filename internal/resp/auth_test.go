package resp_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/resp"
)

const (
	deployTok = "deploy-secret-0123456789"
	adminTok  = "admin-secret-0123456789"
)

const authRules = `
[[token]]
name = "admin"
secret = "` + adminTok + `"
read = [""]
write = [""]

[[token]]
name = "deploy"
secret = "` + deployTok + `"
read = ["app/"]
write = ["app/config/"]
`

// serveAuth serves b on a loopback port with the rules of authRules, from
// a file it returns the path of.
func serveAuth(t *testing.T, b api.Backend) (*auth.Authorizer, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(path, []byte(authRules), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Open(path, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := resp.New(b, nil, nil)
	s.RequireAuth(a)
	return a, path, serveOn(t, s, s.Serve)
}

func authClient(t *testing.T, addr, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1, Password: password})
	t.Cleanup(func() { c.Close() })
	return c
}

// errPrefix returns the first word of a Redis error reply, or "" for none.
func errPrefix(err error) string {
	if err == nil || err == redis.Nil {
		return ""
	}
	w, _, _ := strings.Cut(err.Error(), " ")
	return w
}

func TestAuth_RESP(t *testing.T) {
	for _, backend := range []string{"sync", "async"} {
		t.Run(backend, func(t *testing.T) {
			var b api.Backend
			var fb *fakeBackend
			if backend == "async" {
				ab := newAsyncBackend(t, argent.Limits{})
				ab.refuse.Store(0)
				b, fb = ab, ab.fakeBackend
			} else {
				fb = newFakeBackend(t, argent.Limits{})
				b = fb
			}
			fb.put(t, "app/config/a", "1", "app/x", "2", "other/y", "3")
			_, _, addr := serveAuth(t, b)
			ctx := context.Background()

			none := authClient(t, addr, "")
			deploy := authClient(t, addr, deployTok)
			for _, tc := range []struct {
				name string
				c    *redis.Client
				cmd  []any
				want string // error prefix; "" for none
			}{
				{"get no token", none, []any{"GET", "app/x"}, "NOAUTH"},
				{"set no token", none, []any{"SET", "app/config/a", "new"}, "NOAUTH"},
				{"scan no token", none, []any{"SCAN", "0"}, "NOAUTH"},
				{"info no token", none, []any{"INFO"}, "NOAUTH"},
				{"hello no token", none, []any{"HELLO", "2"}, "NOAUTH"},
				{"ping no token", none, []any{"PING"}, "NOAUTH"},
				{"wrong auth", none, []any{"AUTH", "nope-nope-nope-nope"}, "WRONGPASS"},
				{"still no token", none, []any{"GET", "app/x"}, "NOAUTH"},
				{"get other prefix", deploy, []any{"GET", "other/y"}, "NOPERM"},
				{"mget one forbidden", deploy, []any{"MGET", "app/x", "other/y"}, "NOPERM"},
				{"exists forbidden", deploy, []any{"EXISTS", "other/y"}, "NOPERM"},
				{"set read-only", deploy, []any{"SET", "app/x", "new"}, "NOPERM"},
				{"set other prefix", deploy, []any{"SET", "other/y", "new"}, "NOPERM"},
				{"del one forbidden", deploy, []any{"DEL", "app/config/a", "other/y"}, "NOPERM"},
				{"get allowed", deploy, []any{"GET", "app/x"}, ""},
				{"mget allowed", deploy, []any{"MGET", "app/x", "app/config/a"}, ""},
			} {
				err := tc.c.Do(ctx, tc.cmd...).Err()
				if got := errPrefix(err); got != tc.want {
					t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
				}
			}

			// A pipeline mixing allowed and forbidden SETs: each reply in its
			// place, on the loop's and the goroutine's SET paths alike.
			pipe := deploy.Pipeline()
			cmds := []*redis.StatusCmd{
				pipe.Set(ctx, "app/config/b", "b", 0),
				pipe.Set(ctx, "other/z", "z", 0),
				pipe.Set(ctx, "app/config/c", "c", 0),
			}
			pipe.Do(ctx, "SCAN", "0", "COUNT", "100") // hands the rest to a goroutine
			cmds = append(cmds, pipe.Set(ctx, "other/w", "w", 0), pipe.Set(ctx, "app/config/d", "d", 0))
			_, _ = pipe.Exec(ctx)
			for i, want := range []string{"", "NOPERM", "", "NOPERM", ""} {
				if got := errPrefix(cmds[i].Err()); got != want {
					t.Errorf("pipelined SET %d: %v, want %q", i, cmds[i].Err(), want)
				}
			}

			// SCAN shows only readable keys, for a wide prefix and an exact one.
			keys, cur, err := deploy.Scan(ctx, 0, "*", 100).Result()
			slices.Sort(keys)
			if err != nil || cur != 0 || !slices.Equal(keys, []string{"app/config/a", "app/config/b", "app/config/c", "app/config/d", "app/x"}) {
				t.Errorf("SCAN 0 = %q %d %v", keys, cur, err)
			}
			if keys, _, err := deploy.Scan(ctx, 0, "other/y", 10).Result(); err != nil || len(keys) != 0 {
				t.Errorf("SCAN MATCH other/y = %q %v, want none", keys, err)
			}

			// Nothing refused changed anything.
			admin := authClient(t, addr, adminTok)
			got, err := admin.MGet(ctx, "app/config/a", "app/x", "other/y", "other/z", "other/w").Result()
			if err != nil {
				t.Fatal(err)
			}
			if want := []any{"1", "2", "3", nil, nil}; !slices.Equal(got, want) {
				t.Errorf("state after refusals = %q, want %q", got, want)
			}
		})
	}
}

func TestAuth_RESPLoginForms(t *testing.T) {
	b := newFakeBackend(t, argent.Limits{})
	b.put(t, "app/x", "2")
	a, path, addr := serveAuth(t, b)
	ctx := context.Background()

	// AUTH user token: the user is ignored.
	c := authClient(t, addr, "")
	if err := c.Do(ctx, "AUTH", "someone", deployTok).Err(); err != nil {
		t.Fatalf("AUTH user token: %v", err)
	}
	if v, err := c.Get(ctx, "app/x").Result(); err != nil || v != "2" {
		t.Fatalf("GET after AUTH: %q %v", v, err)
	}
	// HELLO 2 AUTH user token, as go-redis sends it with a user name.
	h := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1, Username: "default", Password: deployTok})
	t.Cleanup(func() { h.Close() })
	if v, err := h.Get(ctx, "app/x").Result(); err != nil || v != "2" {
		t.Fatalf("GET after HELLO AUTH: %q %v", v, err)
	}
	// A wrong token fails the connection.
	w := authClient(t, addr, "wrong-wrong-wrong-wrong")
	if err := w.Get(ctx, "app/x").Err(); errPrefix(err) != "WRONGPASS" {
		t.Fatalf("GET with a wrong password: %v", err)
	}

	// A reload that rotates the token reaches the open connection.
	const rotated = "rotated-secret-0123456789"
	if err := os.WriteFile(path, []byte(strings.Replace(authRules, deployTok, rotated, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "app/x").Err(); errPrefix(err) != "NOAUTH" {
		t.Fatalf("GET after the token was rotated out: %v", err)
	}
	if err := c.Do(ctx, "AUTH", rotated).Err(); err != nil {
		t.Fatalf("AUTH with the new token: %v", err)
	}
	if v, err := c.Get(ctx, "app/x").Result(); err != nil || v != "2" {
		t.Fatalf("GET with the new token: %q %v", v, err)
	}
}

func TestAuth_RESPWithoutRules(t *testing.T) {
	_, _, addr := startServer(t, argent.Limits{})
	c := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Do(ctx, "AUTH", deployTok).Err(); err == nil || !strings.Contains(err.Error(), "without any password configured") {
		t.Fatalf("AUTH without rules: %v", err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET without rules: %v", err)
	}
}
