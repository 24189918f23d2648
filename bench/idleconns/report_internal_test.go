package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// The section states each port's memory per connection and, from the
// opening, connections per second and server CPU per connection.
func TestWriteMarkdown(t *testing.T) {
	res := &results{
		Started: time.Date(2026, 12, 8, 4, 0, 0, 0, time.UTC), Command: "cd bench && go run ./idleconns", WallSeconds: 90,
		Machine: benchnode.Machine{NProc: 2, CPUModel: "cpu", Kernel: "k", Go: "go", Tree: "abc", LoadStart: "1 1 1", LoadEnd: "2 2 2"},
		Conns:   10000, Dialers: 8,
		Ports: []portResult{
			{Name: "argent RESP (event loops)", RSSIdle: 30 << 20, RSSWith: 30<<20 + 10000*1024, BytesPerConn: 1024,
				OpenSeconds: 0.5, OpenCPUSeconds: 0.25},
			{Name: "argent RESP over TLS (a goroutine each)", TLS: true, RSSIdle: 31 << 20, RSSWith: 31<<20 + 10000*30*1024,
				BytesPerConn: 30 * 1024, OpenSeconds: 20, OpenCPUSeconds: 6.5, Protocol: "TLS 1.3, X25519MLKEM768, TLS_AES_128_GCM_SHA256"},
		},
		Notes: []string{"a note"},
	}
	var b strings.Builder
	writeMarkdown(&b, res)
	md := b.String()
	for _, want := range []string{
		markBegin + "\n", "\n" + markEnd + "\n",
		"### Results of 2026-12-08 04:00 UTC",
		"load average 1 1 1 at the start and 2 2 2 at the end",
		"| port | RSS idle | RSS with 10,000 | per connection |",
		"| argent RESP (event loops) | 30.0 MiB | 39.8 MiB | 1.0 KiB |",
		"| argent RESP over TLS (a goroutine each) | 31.0 MiB | 324.0 MiB | 30.0 KiB |",
		"Opening the 10,000 connections, 8 at a time",
		"| argent RESP (event loops) | 20,000 | 25 µs | no |",
		"| argent RESP over TLS (a goroutine each) | 500 | 650 µs | TLS 1.3, X25519MLKEM768, TLS_AES_128_GCM_SHA256 |",
		"- a note\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		command string
		wantErr bool
	}{
		{name: "Defaults", command: "cd bench && go run ./idleconns"},
		{name: "Flags", args: []string{"-n", "500", "-tls=false"}, command: "cd bench && go run ./idleconns -n 500 -tls=false"},
		{name: "EmptyValue", args: []string{"-docs", ""}, command: `cd bench && go run ./idleconns -docs ""`},
		{name: "NoConnections", args: []string{"-n", "0"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(tc.args, io.Discard)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parse(%q) = %+v, want an error", tc.args, c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.command != tc.command {
				t.Errorf("command %q, want %q", c.command, tc.command)
			}
		})
	}
}
