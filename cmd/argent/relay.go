package main

import (
	"context"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/node"
)

// RelayCmd runs a relay: the data center's node between its proxies and
// their replicas. It keeps nothing on disk.
type RelayCmd struct {
	ConfigFlag
	Listen        string        `help:"Address for the node-to-node streams (log, lookups, miss stream), /v1/status and /metrics." required:""`
	Upstream      string        `help:"Replicas to follow the log from and resolve misses at, comma-separated, in order of preference." required:""`
	DC            string        `name:"dc" help:"This relay's data center, reported to its upstreams and children."`
	LogBuffer     byteSize      `help:"Memory for the recent log served to the proxies; a proxy further behind starts over." default:"64MiB"`
	LookupTimeout time.Duration `help:"How long one lookup at the replicas may take, failovers included." default:"5s"`
	StallTimeout  time.Duration `help:"Move to another upstream after this long without a frame." default:"30s"`
	Heartbeat     time.Duration `help:"Interval of heartbeats to children." default:"1s"`
	MaxKey        byteSize      `help:"Largest key accepted in a lookup." default:"1024"`
	Auth          string        `help:"TOML file of bearer tokens (see docs/SECURITY.md). A relay serves no keys to clients, so it only checks that the file is valid; SIGHUP reloads it." type:"path" placeholder:"FILE"`
	Pprof         bool          `help:"Serve Go's profiler under /debug/pprof/ on the listen address."`
	LogLevel      string        `help:"Log level: debug, info, warn, error." default:"info" enum:"debug,info,warn,error"`
	TLSFlags
}

// Run starts the relay and serves until interrupted.
func (c *RelayCmd) Run(ctx context.Context) error {
	if c.LogBuffer < 1 {
		return exitError{code: 2, msg: "--log-buffer must be at least 1 byte"}
	}
	if c.LookupTimeout <= 0 {
		return exitError{code: 2, msg: "--lookup-timeout must be positive"}
	}
	cfg := node.Config{Role: node.RoleRelay, Listen: c.Listen, Upstreams: splitList(c.Upstream), DC: c.DC,
		LogBuffer: int64(c.LogBuffer), MissWait: c.LookupTimeout, StallTimeout: c.StallTimeout, Heartbeat: c.Heartbeat,
		Pprof: c.Pprof, Limits: argent.Limits{MaxKey: int(c.MaxKey)}, TLS: c.files(), AuthFile: c.Auth}
	if err := cfg.Validate(); err != nil {
		return exitError{code: 2, msg: strings.TrimPrefix(err.Error(), "node: ")}
	}
	cfg.Logger = newLogger(c.LogLevel)
	return serve(ctx, cfg)
}
