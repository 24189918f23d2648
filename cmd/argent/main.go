// Command argent runs any argent role (root, replica, proxy, relay, dev) and talks to a
// running node (get, put, del, scan, watch, status).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// CLI is the command line. Each subcommand is a struct with a Run method.
type CLI struct {
	Root    RootCmd    `cmd:"" help:"Run the root: the write path."`
	Replica ReplicaCmd `cmd:"" help:"Run a replica: a full copy that follows an upstream."`
	Proxy   ProxyCmd   `cmd:"" help:"Run a proxy: a disk-budgeted cache that follows a replica and resolves misses there."`
	Relay   RelayCmd   `cmd:"" help:"Run a relay: a data center's node between its proxies and replicas (log fan-out, shared lookups, miss stream); nothing on disk."`
	Dev     DevCmd     `cmd:"" help:"Run a whole tree in one process on 127.0.0.1 with demo data, until Ctrl-C: a root (:7400), a replica (:7401), and a data center \"dev\" of a second replica (:7410), a relay (:7411) and four proxies (:7402, :7412-:7414) sharing L2 shards; the first proxy also speaks the Redis protocol (:7379)."`

	Get    GetCmd    `cmd:"" help:"Read a key."`
	MGet   MGetCmd   `cmd:"" name:"mget" help:"Read several keys at one index."`
	Put    PutCmd    `cmd:"" help:"Write a key."`
	Del    DelCmd    `cmd:"" help:"Delete a key (or every key with a prefix)."`
	Txn    TxnCmd    `cmd:"" help:"Commit puts and deletes atomically, under conditions on mod indexes."`
	Scan   ScanCmd   `cmd:"" help:"List keys with a prefix."`
	Watch  WatchCmd  `cmd:"" help:"Stream committed batches touching a prefix."`
	Load   LoadCmd   `cmd:"" help:"Write many keys from JSON lines or CSV, in batches."`
	Export ExportCmd `cmd:"" help:"Write every key (with a prefix) at one index as JSON lines."`
	Status StatusCmd `cmd:"" help:"Show a node's status."`
	Trace  TraceCmd  `cmd:"" help:"Show the path of one read through a node's tiers (window, cache, filter, L2 owner, L3)."`
	Help   HelpCmd   `cmd:"" help:"Show help for a command."`
	Member MemberCmd `cmd:"" help:"Look at and change the members of a root group: list, add, remove, transfer."`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

// ConfigFlag is the --config flag of the commands that run a node; client
// commands have no config file.
type ConfigFlag struct {
	Config kong.ConfigFlag `help:"TOML file with flag values (kebab-case keys, e.g. listen = \"127.0.0.1:7400\")." placeholder:"FILE"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// stdio is where a command reads its input and writes its output, so that
// tests can run commands in-process.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	errTTY   bool // err is a terminal: load draws a progress bar
}

// run parses args and runs the command with the process's stdin, stdout and
// stderr, returning the exit code.
func run(ctx context.Context, args []string) int {
	return runWith(ctx, args, &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, errTTY: isTerminal(os.Stderr)})
}

// runWith parses args and runs the command with io, returning the exit
// code. Every failure is one line on io.err, "argent: ...": 2 for a bad
// command line, 1 (or the command's own code) for a failed command.
func runWith(ctx context.Context, args []string, io *stdio) int {
	var cli CLI
	exited := -1
	parser, err := kong.New(&cli,
		kong.Name("argent"),
		kong.Description("argent distributes read-mostly data to every server of a fleet and serves it locally."),
		kong.Configuration(tomlLoader),
		kong.Vars{"version": version},
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(io),
		kong.Writers(io.out, io.err),
		kong.Exit(func(code int) { exited = code }),
	)
	if err != nil {
		fmt.Fprintf(io.err, "argent: %v\n", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exited >= 0 {
		// --help or --version printed and asked to exit.
		return exited
	}
	if err != nil {
		fmt.Fprintf(io.err, "argent: %s\n", parseErrorLine(err))
		return 2
	}
	if err := kctx.Run(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintf(io.err, "argent: %s\n", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintf(io.err, "argent: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// parseErrorLine is kong's message for a bad command line, pointing to the
// help of the command it was parsing.
func parseErrorLine(err error) string {
	help := "argent help"
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if cmd := pe.Context.Command(); cmd != "" {
			help += " " + strings.Join(commandWords(cmd), " ")
		}
	}
	return fmt.Sprintf("%s (see %s)", oneLine(err.Error()), help)
}

// commandWords keeps the command words of kong's command path ("get
// <key>" gives "get").
func commandWords(cmd string) []string {
	var out []string
	for _, w := range strings.Fields(cmd) {
		if !strings.HasPrefix(w, "<") {
			out = append(out, w)
		}
	}
	return out
}

// HelpCmd prints the help of the whole CLI or of one command.
type HelpCmd struct {
	Command []string `arg:"" optional:"" help:"The command to show the help of, e.g. get or member add."`
}

// Run prints the help.
func (h *HelpCmd) Run(kctx *kong.Context) error {
	ctx, err := kong.Trace(kctx.Kong, h.Command)
	if err != nil {
		return err
	}
	if ctx.Error != nil {
		return exitError{code: 2, msg: fmt.Sprintf("help: no command %q (see argent help)", strings.Join(h.Command, " "))}
	}
	return ctx.PrintUsage(false)
}

// exitError ends the program with a code and a one-line message.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }
