// Command argent runs any argent role (root, replica, proxy, relay, dev) and talks to a
// running node (get, put, del, scan, watch, status).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// CLI is the command line. Each subcommand is a struct with a Run method.
type CLI struct {
	Config kong.ConfigFlag `help:"TOML file with flag values (kebab-case keys, e.g. listen = \"127.0.0.1:7400\")." placeholder:"FILE"`

	Root    RootCmd    `cmd:"" help:"Run the root: the write path."`
	Replica ReplicaCmd `cmd:"" help:"Run a replica: a full copy that follows an upstream."`
	Proxy   ProxyCmd   `cmd:"" help:"Run a proxy: a disk-budgeted cache that follows a replica and resolves misses there."`
	Relay   RelayCmd   `cmd:"" help:"Run a relay: a data center's node between its proxies and replicas (log fan-out, shared lookups, miss stream); nothing on disk."`
	Dev     DevCmd     `cmd:"" help:"Run a whole local tree on 127.0.0.1 with demo data: root, replicas, a relay and a data center of proxies."`

	Get    GetCmd    `cmd:"" help:"Read a key."`
	Put    PutCmd    `cmd:"" help:"Write a key."`
	Del    DelCmd    `cmd:"" help:"Delete a key (or every key with a prefix)."`
	Scan   ScanCmd   `cmd:"" help:"List keys with a prefix."`
	Watch  WatchCmd  `cmd:"" help:"Stream committed batches touching a prefix."`
	Status StatusCmd `cmd:"" help:"Show a node's status."`
	Trace  TraceCmd  `cmd:"" help:"Show the path of one read through a node's tiers (window, cache, filter, L2 owner, L3)."`
	Member MemberCmd `cmd:"" help:"Look at and change the members of a root group: list, add, remove, transfer."`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run parses args and runs the command, returning the exit code.
func run(ctx context.Context, args []string) int {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("argent"),
		kong.Description("argent distributes read-mostly data to every server of a fleet and serves it locally."),
		kong.Configuration(tomlLoader),
		kong.Vars{"version": version},
		kong.BindTo(ctx, (*context.Context)(nil)),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "argent: %v\n", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "argent: %v (see argent --help)\n", err)
		return 2
	}
	if err := kctx.Run(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintf(os.Stderr, "argent: %s\n", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintf(os.Stderr, "argent: %v\n", err)
		return 1
	}
	return 0
}

// exitError ends the program with a code and a one-line message.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }
