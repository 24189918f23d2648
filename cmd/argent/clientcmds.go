package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/statustree"
)

// ServerFlag picks the node a client command talks to.
type ServerFlag struct {
	Server string `help:"Node to talk to (host:port). Writes sent to a replica are forwarded to the root." default:"127.0.0.1:7400" env:"ARGENT_SERVER"`
}

func (f *ServerFlag) client() (*client.Client, error) {
	c, err := client.New(f.Server)
	if err != nil {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--server %q: %v", f.Server, err)}
	}
	return c, nil
}

// ReadFlags are the consistency flags of reads.
type ReadFlags struct {
	MinIndex uint64        `help:"Answer from a state at or after this index (read-your-writes)."`
	Wait     time.Duration `help:"How long to wait for --min-index to be reached." default:"5s"`
}

func (f *ReadFlags) options() client.ReadOptions {
	return client.ReadOptions{MinIndex: argent.Index(f.MinIndex), Wait: f.Wait}
}

// GetCmd reads one key.
type GetCmd struct {
	Key     string `arg:"" help:"Key to read."`
	Verbose bool   `short:"v" help:"Print the index, mod index and tier on stderr."`
	ReadFlags
	ServerFlag
}

// Run prints the value on stdout.
func (c *GetCmd) Run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	v, err := cl.Get(ctx, []byte(c.Key), c.options())
	if errors.Is(err, argent.ErrNotFound) {
		return exitError{code: 1, msg: fmt.Sprintf("%s: not found (index %d)", c.Key, v.Index)}
	}
	if err != nil {
		return serverErr(c.Server, err)
	}
	if c.Verbose {
		fmt.Fprintf(os.Stderr, "index=%d mod_index=%d tier=%s\n", v.Index, v.ModIndex, v.Tier)
	}
	_, err = os.Stdout.Write(v.Value)
	if err == nil && isTerminal(os.Stdout) {
		fmt.Println()
	}
	return err
}

// PutCmd writes one key.
type PutCmd struct {
	Key   string  `arg:"" help:"Key to write."`
	Value *string `arg:"" optional:"" help:"Value; read from stdin when omitted."`
	ServerFlag
}

// Run writes and prints the commit index.
func (c *PutCmd) Run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var value []byte
	if c.Value != nil {
		value = []byte(*c.Value)
	} else if value, err = io.ReadAll(os.Stdin); err != nil {
		return fmt.Errorf("read value from stdin: %w", err)
	}
	idx, err := cl.Put(ctx, []byte(c.Key), value)
	if err != nil {
		return serverErr(c.Server, err)
	}
	fmt.Printf("index %d\n", idx)
	return nil
}

// DelCmd deletes a key or a prefix.
type DelCmd struct {
	Key    string `arg:"" help:"Key to delete (or prefix, with --prefix)."`
	Prefix bool   `help:"Delete every key starting with KEY, in one batch."`
	ServerFlag
}

// Run deletes and prints the commit index.
func (c *DelCmd) Run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var idx argent.Index
	if c.Prefix {
		idx, err = cl.Txn(ctx, argent.Batch{Ops: []argent.Op{{Type: argent.OpDeletePrefix, Key: []byte(c.Key)}}})
	} else {
		idx, err = cl.Delete(ctx, []byte(c.Key))
	}
	if err != nil {
		return serverErr(c.Server, err)
	}
	fmt.Printf("index %d\n", idx)
	return nil
}

// ScanCmd lists keys with a prefix.
type ScanCmd struct {
	Prefix string `arg:"" optional:"" help:"Key prefix; all keys when omitted."`
	Limit  int    `help:"Stop after this many keys (0: all)." default:"100"`
	Values bool   `help:"Print values too (key<TAB>value)."`
	ReadFlags
	ServerFlag
}

// Run prints one key per line. Every page after the first is read at the
// index of the first, so the listing is one consistent state.
func (c *ScanCmd) Run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	opts := c.options()
	var after []byte
	n := 0
	for {
		page := 1000
		if c.Limit > 0 && c.Limit-n < page {
			page = c.Limit - n
		}
		p, err := cl.Scan(ctx, []byte(c.Prefix), after, page, opts)
		if err != nil {
			return serverErr(c.Server, err)
		}
		for _, it := range p.Items {
			if c.Values {
				fmt.Printf("%s\t%s\n", it.Key, it.Value)
			} else {
				fmt.Println(it.Key)
			}
		}
		n += len(p.Items)
		if len(p.Next) == 0 || (c.Limit > 0 && n >= c.Limit) {
			fmt.Fprintf(os.Stderr, "%d keys at index %d\n", n, p.Index)
			return nil
		}
		after = p.Next
		opts.MinIndex = p.Index
	}
}

// WatchCmd streams batches touching a prefix.
type WatchCmd struct {
	Prefix   string `arg:"" optional:"" help:"Key prefix; all keys when omitted."`
	From     uint64 `help:"First index to stream (default: the next one)."`
	Progress bool   `help:"Print progress markers too."`
	ServerFlag
}

// Run prints one JSON line per batch until interrupted.
func (c *WatchCmd) Run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	w, err := cl.Watch(ctx, []byte(c.Prefix), argent.Index(c.From))
	if err != nil {
		return serverErr(c.Server, err)
	}
	defer w.Close()
	enc := json.NewEncoder(os.Stdout)
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return serverErr(c.Server, err)
		}
		if ev.Progress {
			if c.Progress {
				_ = enc.Encode(client.NewProgressLine(ev.Index))
			}
			continue
		}
		if err := enc.Encode(client.NewWatchLine(ev.Index, ev.Ops)); err != nil {
			return err
		}
	}
}

// StatusCmd shows a node's status.
type StatusCmd struct {
	JSON bool `help:"Print the raw JSON."`
	Tree bool `help:"Print the tree below the node: each child's status and lag, asked of the child itself."`
	ServerFlag
}

// Run prints the status.
func (c *StatusCmd) Run(ctx context.Context) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return serverErr(c.Server, err)
	}
	if c.Tree {
		w := statustree.Walker{}
		tr := w.Walk(ctx, c.Server)
		if tr.Group != nil {
			printGroup(ctx, *tr.Group, "")
		}
		for _, r := range tr.Roots {
			printTree(r, "", "")
		}
		return nil
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Printf("role:        %s\n", st.Role)
	fmt.Printf("node:        %s\n", st.NodeID)
	fmt.Printf("dataset:     %s\n", st.DatasetID)
	fmt.Printf("applied:     %d\n", st.AppliedIndex)
	fmt.Printf("root index:  %d\n", st.RootIndex)
	fmt.Printf("lag:         %s (%d indexes)\n", strconv.FormatFloat(st.LagSeconds, 'f', 3, 64)+"s", st.RootIndex-min(st.RootIndex, st.AppliedIndex))
	if st.Upstream != "" {
		fmt.Printf("upstream:    %s\n", st.Upstream)
	}
	if st.DC != "" {
		fmt.Printf("dc:          %s\n", st.DC)
	}
	if len(st.DCPeers) > 0 {
		fmt.Printf("l2 peers:    %s\n", strings.Join(st.DCPeers, ", "))
	}
	if g := st.Group; g != nil {
		fmt.Printf("group:       member %d (%s), leader %d, term %d, raft applied %d, commit %d\n", g.ID, g.State, g.Leader, g.Term, g.Applied, g.Commit)
		for _, m := range g.Members {
			fmt.Printf("  member %d  %s\n", m.ID, m.Addr)
		}
	}
	fmt.Printf("children:    %d\n", len(st.Children))
	for _, ch := range st.Children {
		fmt.Printf("  %s  node %s  sent up to %d\n", ch.Addr, ch.NodeID, ch.AppliedIndex)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printTree prints a tree walked by statustree: each node with its role,
// applied index and lag, a child that did not answer with the error, a node
// seen twice (a loop) once.
func printTree(n *statustree.Node, first, rest string) {
	st := n.Status
	switch {
	case st == nil:
		fmt.Printf("%s? %s  (no answer: %s)\n", first, n.Addr, n.Error)
		return
	case n.Repeat:
		fmt.Printf("%s%s %s  node %s  (seen above)\n", first, st.Role, n.Addr, st.NodeID)
		return
	}
	dc := ""
	if st.DC != "" {
		dc = "  dc " + st.DC
	}
	fmt.Printf("%s%s %s  node %s  applied %d  lag %.3fs (%d indexes)%s\n", first, st.Role, n.Addr, st.NodeID,
		st.AppliedIndex, st.LagSeconds, st.RootIndex-min(st.RootIndex, st.AppliedIndex), dc)
	for i, ch := range n.Children {
		branch, indent := "├── ", "│   "
		if i == len(n.Children)-1 {
			branch, indent = "└── ", "    "
		}
		printTree(ch, rest+branch, rest+indent)
	}
}

func childStatus(ctx context.Context, addr string) (client.Status, error) {
	cl, err := client.New(addr)
	if err != nil {
		return client.Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, statustree.DefaultTimeout)
	defer cancel()
	return cl.Status(ctx)
}
