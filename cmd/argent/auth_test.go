package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAuthFlags checks --auth on the node roles (flag and config file) and
// --token on the client commands (flag and ARGENT_TOKEN).
func TestAuthFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "argent.toml")
	if err := os.WriteFile(cfg, []byte("auth = \"/etc/argent/auth.toml\"\n[replica]\nupstream = \"a:1\"\nlisten = \"127.0.0.1:9\"\ndata = \"/tmp/x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli, err := parse(t, "replica", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cli.Replica.Auth != "/etc/argent/auth.toml" {
		t.Errorf("replica --auth from the config file = %q", cli.Replica.Auth)
	}
	for _, role := range [][]string{
		{"root", "--data", "/tmp/r", "--auth", "/a.toml"},
		{"proxy", "--data", "/tmp/p", "--listen", "127.0.0.1:1", "--upstream", "a:1", "--cache-size", "1MiB", "--auth", "/a.toml"},
		{"relay", "--listen", "127.0.0.1:1", "--upstream", "a:1", "--auth", "/a.toml"},
	} {
		cli, err := parse(t, role...)
		if err != nil {
			t.Fatalf("%v: %v", role, err)
		}
		got := map[string]string{"root": cli.Root.Auth, "proxy": cli.Proxy.Auth, "relay": cli.Relay.Auth}[role[0]]
		if got != "/a.toml" {
			t.Errorf("%s --auth = %q", role[0], got)
		}
	}

	t.Setenv("ARGENT_TOKEN", "from-env")
	cli, err = parse(t, "get", "k")
	if err != nil {
		t.Fatal(err)
	}
	if cli.Get.Token != "from-env" {
		t.Errorf("get token from ARGENT_TOKEN = %q", cli.Get.Token)
	}
	cli, err = parse(t, "put", "k", "v", "--token", "from-flag")
	if err != nil {
		t.Fatal(err)
	}
	if cli.Put.Token != "from-flag" {
		t.Errorf("put --token = %q", cli.Put.Token)
	}
}

// TestLimitFlags checks the defaults of the limit flags, that they reach
// every client-serving role, and that bad values exit 2 before anything
// starts.
func TestLimitFlags(t *testing.T) {
	cli, err := parse(t, "replica", "--data", "/tmp/x", "--listen", "127.0.0.1:1", "--upstream", "a:1")
	if err != nil {
		t.Fatal(err)
	}
	if l := cli.Replica.LimitFlags; l.MaxConnections != 10000 || l.MaxInFlight != 4096 || l.MaxWatchers != 10000 ||
		l.TokenRate != 0 || l.IdleTimeout.String() != "2m0s" {
		t.Errorf("replica limit defaults %+v", l)
	}
	cli, err = parse(t, "proxy", "--data", "/tmp/p", "--listen", "127.0.0.1:1", "--upstream", "a:1", "--cache-size", "1MiB",
		"--max-in-flight", "5", "--token-rate", "2.5")
	if err != nil {
		t.Fatal(err)
	}
	if cli.Proxy.MaxInFlight != 5 || cli.Proxy.TokenRate != 2.5 {
		t.Errorf("proxy limit flags %+v", cli.Proxy.LimitFlags)
	}
	for _, args := range [][]string{
		{"root", "--data", t.TempDir(), "--idle-timeout", "0s"},
		{"root", "--data", t.TempDir(), "--max-connections", "-1"},
		{"replica", "--data", t.TempDir(), "--listen", "127.0.0.1:1", "--upstream", "a:1", "--token-rate", "-1"},
	} {
		if code := run(t.Context(), args); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
