package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/argent-kv/argent/internal/node"
)

func TestByteSize_UnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "4096", want: 4096},
		{in: "1KiB", want: 1024},
		{in: "32MiB", want: 32 << 20},
		{in: "1GB", want: 1 << 30},
		{in: "1.5 GiB", want: 3 << 29},
		{in: "12XB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "MiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b byteSize
			err := b.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.wantErr || (!tt.wantErr && int64(b) != tt.want) {
				t.Fatalf("UnmarshalText(%q) = %d, %v", tt.in, b, err)
			}
		})
	}
}

func parse(t *testing.T, args ...string) (*CLI, error) {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Configuration(tomlLoader), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Parse(args)
	return &cli, err
}

func TestConfig_TOML(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("TablesAndTopLevel", func(t *testing.T) {
		cfg := write("a.toml", "history = \"1h\"\nmax-value = \"1MiB\"\n[replica]\nupstream = [\"a:1\", \"b:2\"]\nlisten = \"127.0.0.1:9\"\ndata = \"/tmp/x\"\n")
		cli, err := parse(t, "replica", "--config", cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := cli.Replica
		if r.Upstream != "a:1,b:2" || r.Listen != "127.0.0.1:9" || r.History.String() != "1h0m0s" || r.MaxValue != 1<<20 {
			t.Fatalf("replica flags %+v", r)
		}
	})
	t.Run("FlagWins", func(t *testing.T) {
		cfg := write("b.toml", "[root]\nlisten = \"127.0.0.1:1\"\ndata = \"/tmp/r\"\n")
		cli, err := parse(t, "root", "--config", cfg, "--listen", "127.0.0.1:2")
		if err != nil {
			t.Fatal(err)
		}
		if cli.Root.Listen != "127.0.0.1:2" || cli.Root.Data != "/tmp/r" {
			t.Fatalf("root flags %+v", cli.Root)
		}
	})
	t.Run("UnknownKey", func(t *testing.T) {
		cfg := write("c.toml", "lissten = \"x\"\n")
		if _, err := parse(t, "root", "--data", "/tmp/r", "--config", cfg); err == nil || !strings.Contains(err.Error(), "lissten") {
			t.Fatalf("unknown key accepted: %v", err)
		}
	})
	t.Run("SampleFile", func(t *testing.T) {
		if _, err := parse(t, "replica", "--config", "etc/argent.toml"); err != nil {
			t.Fatalf("etc/argent.toml: %v", err)
		}
	})
}

// The Raft log window flags are hidden from --help but parsed.
func TestRootCmd_RaftLogFlags(t *testing.T) {
	cli, err := parse(t, "root", "--data", "/tmp/r", "--raft-log-keep", "5", "--raft-compact-interval", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	if r := cli.Root; r.RaftLogKeep != 5 || r.RaftCompactInterval != 200*time.Millisecond {
		t.Fatalf("--raft-log-keep %d, --raft-compact-interval %v; want 5 and 200ms", r.RaftLogKeep, r.RaftCompactInterval)
	}
	cli, err = parse(t, "root", "--data", "/tmp/r")
	if err != nil {
		t.Fatal(err)
	}
	if r := cli.Root; r.RaftLogKeep != 0 || r.RaftCompactInterval != 0 {
		t.Fatalf("defaults: --raft-log-keep %d, --raft-compact-interval %v; want 0 (the group's defaults)", r.RaftLogKeep, r.RaftCompactInterval)
	}
}

// Client commands exit non-zero with a one-line message on errors.
func TestRun_ExitCodes(t *testing.T) {
	n, err := node.Start(context.Background(), node.Config{Role: node.RoleRoot, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	srv := "--server=" + n.Addr()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "PutOK", args: []string{"put", srv, "k", "v"}, want: 0},
		{name: "GetOK", args: []string{"get", srv, "k"}, want: 0},
		{name: "GetMissing", args: []string{"get", srv, "nope"}, want: 1},
		{name: "PutTooLongKey", args: []string{"put", srv, strings.Repeat("k", 2000), "v"}, want: 1},
		{name: "DelPrefix", args: []string{"del", "--prefix", srv, "k"}, want: 0},
		{name: "BadServer", args: []string{"get", "--server=127.0.0.1:1", "k"}, want: 1},
		{name: "UnknownFlag", args: []string{"get", "--nope", "k"}, want: 2},
		{name: "PeersWithoutID", args: []string{"root", "--data", t.TempDir(), "--peers", "1=a:1,2=b:1,3=c:1"}, want: 2},
		{name: "PeersBadForm", args: []string{"root", "--data", t.TempDir(), "--id", "1", "--peers", "1=a:1,b:1"}, want: 2},
		{name: "IDWithoutPeers", args: []string{"root", "--data", t.TempDir(), "--id", "1"}, want: 2},
		{name: "PeersRepeatedID", args: []string{"root", "--data", t.TempDir(), "--id", "1", "--peers", "1=a:1,1=b:1"}, want: 2},
		{name: "RaftCompactIntervalNegative", args: []string{"root", "--data", t.TempDir(), "--id", "1", "--peers", "1=a:1", "--raft-compact-interval=-1s"}, want: 2},
		{name: "ReplicaNeedsUpstream", args: []string{"replica", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, want: 2},
		{name: "RelayNeedsUpstream", args: []string{"relay", "--listen", "127.0.0.1:0"}, want: 2},
		{name: "RelayTakesNoData", args: []string{"relay", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1"}, want: 2},
		{name: "RelayZeroBuffer", args: []string{"relay", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--log-buffer", "0"}, want: 2},
		{name: "RelayFollowsItself", args: []string{"relay", "--listen", "127.0.0.1:7", "--upstream", "127.0.0.1:7"}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(ctx, tt.args); got != tt.want {
				t.Fatalf("argent %s: exit %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
	if got := n.Store().Applied(); got != 2 {
		t.Fatalf("applied %d after one put and one delete-prefix, want 2", got)
	}
}
