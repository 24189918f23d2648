package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	goio "io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/statustree"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// ServerFlag picks the nodes a client command talks to, and how: over TLS
// when --tls-ca is given (or the address is https://).
type ServerFlag struct {
	Server  string `help:"Node to talk to (host:port or https://host:port), or several, comma-separated: the next is tried when one cannot be reached or is not ready. Writes sent to a non-root node are forwarded to the root." default:"127.0.0.1:7400" env:"ARGENT_SERVER"`
	TLSCA   string `name:"tls-ca" help:"CA certificate (PEM) the node's certificate must chain to; turns on TLS (host:port then means https)." type:"path" env:"ARGENT_TLS_CA"`
	TLSCert string `name:"tls-cert" help:"Client certificate (PEM) to present, with --tls-key; the public API does not need one." type:"path" env:"ARGENT_TLS_CERT"`
	TLSKey  string `name:"tls-key" help:"Private key (PEM) of --tls-cert." type:"path" env:"ARGENT_TLS_KEY"`
	Token   string `help:"Bearer token for a node that checks tokens (--auth); prefer the environment variable, which other users cannot see in the process list." env:"ARGENT_TOKEN"`
}

func (f *ServerFlag) client() (*client.Client, error) {
	c, err := f.clientAt(f.Server)
	if err != nil {
		return nil, exitError{code: 2, msg: fmt.Sprintf("--server %q: %s", f.Server, cause(err, ""))}
	}
	return c, nil
}

// clientAt returns a client of the node at addr with the command's TLS
// settings (a child in a status tree is reached like the server).
func (f *ServerFlag) clientAt(addr string) (*client.Client, error) {
	files := tlsconf.Files{CA: f.TLSCA, Cert: f.TLSCert, Key: f.TLSKey}
	if !files.Enabled() {
		return client.New(addr, client.WithToken(f.Token))
	}
	tc, err := tlsconf.LoadClient(files)
	if err != nil {
		return nil, err
	}
	return client.New(addr, client.WithTLSConfig(tc.Client()), client.WithToken(f.Token))
}

// ReadFlags are the consistency flags of reads.
type ReadFlags struct {
	MinIndex uint64        `help:"Answer from a state at or after this index (read-your-writes)."`
	Wait     time.Duration `help:"How long to wait for --min-index to be reached." default:"5s"`
}

func (f *ReadFlags) options() client.ReadOptions {
	return client.ReadOptions{MinIndex: argent.Index(f.MinIndex), Wait: f.Wait}
}

// checkKey refuses an empty key before anything is sent.
func checkKey(op, key string) error {
	if key == "" {
		return exitError{code: 1, msg: op + ": key is empty"}
	}
	return nil
}

// GetCmd reads one key.
type GetCmd struct {
	Key     string `arg:"" help:"Key to read."`
	Raw     bool   `help:"Write the value's exact bytes, without the newline (for binary values and pipes)."`
	Verbose bool   `short:"v" help:"Print the index, mod index and tier on stderr."`
	ReadFlags
	ServerFlag
}

// Run prints the value and a newline on stdout (the exact bytes with
// --raw).
func (c *GetCmd) Run(ctx context.Context, io *stdio) error {
	if err := checkKey("get", c.Key); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	v, err := cl.Get(ctx, []byte(c.Key), c.options())
	if errors.Is(err, argent.ErrNotFound) {
		return exitError{code: 1, msg: fmt.Sprintf("get %s: not found (index %d)", shortKey(c.Key), v.Index)}
	}
	if err != nil {
		return opError("get", c.Key, err)
	}
	if c.Verbose {
		fmt.Fprintf(io.err, "index=%d mod_index=%d tier=%s\n", v.Index, v.ModIndex, v.Tier)
	}
	if _, err := io.out.Write(v.Value); err != nil {
		return err
	}
	if !c.Raw {
		_, err = fmt.Fprintln(io.out)
	}
	return err
}

// MGetCmd reads several keys at one index.
type MGetCmd struct {
	Keys []string `arg:"" sep:"none" help:"Keys to read."`
	JSON bool     `name:"json" help:"Print the API's JSON answer (values in base64)."`
	ReadFlags
	ServerFlag
}

// Run prints "key value" per key (text values as is, others as base64:...;
// an absent key as "key (absent)"), and the index on stderr.
func (c *MGetCmd) Run(ctx context.Context, io *stdio) error {
	keys := make([][]byte, len(c.Keys))
	for i, k := range c.Keys {
		if err := checkKey("mget", k); err != nil {
			return err
		}
		keys[i] = []byte(k)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	at, items, err := cl.MGet(ctx, keys, c.options())
	if err != nil {
		return opError("mget", "", err)
	}
	if c.JSON {
		return json.NewEncoder(io.out).Encode(client.MGetResponse{Index: at, Items: items})
	}
	for _, it := range items {
		if it.Absent {
			fmt.Fprintf(io.out, "%s (absent)\n", it.Key)
			continue
		}
		fmt.Fprintf(io.out, "%s %s\n", it.Key, showValue(it.Value))
	}
	fmt.Fprintf(io.err, "%d keys at index %d\n", len(items), at)
	return nil
}

// showValue is a value on one line: as is when printable text, else
// "base64:" and its base64.
func showValue(v []byte) string {
	if printable(v) {
		return string(v)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(v)
}

// PutCmd writes one key.
type PutCmd struct {
	Key   string  `arg:"" help:"Key to write."`
	Value *string `arg:"" optional:"" help:"Value; read from stdin when omitted."`
	ServerFlag
}

// Run writes and prints the commit index.
func (c *PutCmd) Run(ctx context.Context, io *stdio) error {
	if err := checkKey("put", c.Key); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var value []byte
	if c.Value != nil {
		value = []byte(*c.Value)
	} else if value, err = goio.ReadAll(io.in); err != nil {
		return fmt.Errorf("read value from stdin: %w", err)
	}
	idx, err := cl.Put(ctx, []byte(c.Key), value)
	if err != nil {
		return opError("put", c.Key, err)
	}
	fmt.Fprintf(io.out, "index %d\n", idx)
	return nil
}

// DelCmd deletes a key or a prefix.
type DelCmd struct {
	Key    string `arg:"" help:"Key to delete (or prefix, with --prefix)."`
	Prefix bool   `help:"Delete every key starting with KEY, in one batch."`
	ServerFlag
}

// Run deletes and prints the commit index.
func (c *DelCmd) Run(ctx context.Context, io *stdio) error {
	if !c.Prefix {
		if err := checkKey("del", c.Key); err != nil {
			return err
		}
	}
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
		return opError("del", c.Key, err)
	}
	fmt.Fprintf(io.out, "index %d\n", idx)
	return nil
}

// ScanCmd lists keys with a prefix.
type ScanCmd struct {
	Prefix string `arg:"" optional:"" help:"Key prefix; all keys when omitted."`
	Limit  int    `help:"Stop after this many keys (0: all)." default:"100"`
	Values bool   `help:"Print values too (key<TAB>value; values that are not text as base64:...)."`
	ReadFlags
	ServerFlag
}

// Run prints one key per line. Every page after the first is read at the
// index of the first (scan at=N), so the listing is one state.
func (c *ScanCmd) Run(ctx context.Context, io *stdio) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	n := 0
	at, err := scanPages(ctx, cl, []byte(c.Prefix), 0, c.options(), func(it client.Item) bool {
		if c.Values {
			fmt.Fprintf(io.out, "%s\t%s\n", it.Key, showValue(it.Value))
		} else {
			fmt.Fprintln(io.out, it.Key)
		}
		n++
		return c.Limit <= 0 || n < c.Limit
	})
	if err != nil {
		return opError("scan", c.Prefix, err)
	}
	fmt.Fprintf(io.err, "%d keys at index %d\n", n, at)
	return nil
}

// scanPages reads the keys under prefix page by page and gives each to
// each until it returns false. Every page is read at one index: at when
// not 0, else the first page's; it returns that index.
func scanPages(ctx context.Context, cl *client.Client, prefix []byte, at argent.Index, opts client.ReadOptions, each func(client.Item) bool) (argent.Index, error) {
	var after []byte
	for {
		var p client.Page
		var err error
		if at == 0 {
			p, err = cl.Scan(ctx, prefix, after, 1000, opts)
		} else {
			p, err = cl.ScanAt(ctx, prefix, after, 1000, at, opts)
		}
		if err != nil {
			return at, err
		}
		at = p.Index
		for _, it := range p.Items {
			if !each(it) {
				return at, nil
			}
		}
		if len(p.Next) == 0 {
			return at, nil
		}
		after = p.Next
	}
}

// WatchCmd streams batches touching a prefix.
type WatchCmd struct {
	Prefix   string `arg:"" optional:"" help:"Key prefix; all keys when omitted."`
	From     uint64 `help:"First index to stream (default: the next one)."`
	Progress bool   `help:"Print progress markers too."`
	JSON     bool   `name:"json" help:"Print the API's NDJSON lines (values in base64) instead of text."`
	ServerFlag
}

// Run prints one line per operation ("INDEX put KEY VALUE", "INDEX delete
// KEY", "INDEX delete_prefix PREFIX"), or with --json one JSON line per
// batch, until interrupted.
func (c *WatchCmd) Run(ctx context.Context, io *stdio) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	w, err := cl.Watch(ctx, []byte(c.Prefix), argent.Index(c.From))
	if err != nil {
		return opError("watch", c.Prefix, err)
	}
	defer w.Close()
	enc := json.NewEncoder(io.out)
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return opError("watch", c.Prefix, err)
		}
		switch {
		case ev.Progress && !c.Progress:
		case c.JSON && ev.Progress:
			err = enc.Encode(client.NewProgressLine(ev.Index))
		case c.JSON:
			err = enc.Encode(client.NewWatchLine(ev.Index, ev.Ops))
		case ev.Progress:
			_, err = fmt.Fprintf(io.out, "%d progress\n", ev.Index)
		default:
			err = writeOps(io.out, ev.Index, ev.Ops)
		}
		if err != nil {
			return err
		}
	}
}

// writeOps writes one text line per operation of the batch at index.
func writeOps(w goio.Writer, index argent.Index, ops []argent.Op) error {
	for _, op := range ops {
		var err error
		if op.Type == argent.OpPut {
			_, err = fmt.Fprintf(w, "%d put %s %s\n", index, op.Key, showValue(op.Value))
		} else {
			_, err = fmt.Fprintf(w, "%d %s %s\n", index, op.Type, op.Key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// StatusCmd shows a node's status.
type StatusCmd struct {
	JSON bool `help:"Print the raw JSON."`
	Tree bool `help:"Print the tree below the node: each child's status and lag, asked of the child itself."`
	ServerFlag
}

// Run prints the status.
func (c *StatusCmd) Run(ctx context.Context, io *stdio) error {
	w := io.out
	cl, err := c.client()
	if err != nil {
		return err
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return opError("status", "", err)
	}
	if c.Tree {
		walker := statustree.Walker{NewClient: c.clientAt}
		tr := walker.Walk(ctx, strings.TrimPrefix(strings.TrimPrefix(cl.Addr(), "http://"), "https://"))
		if tr.Group != nil {
			c.printGroup(ctx, w, *tr.Group, "")
		}
		for _, r := range tr.Roots {
			printTree(w, r, "", "")
		}
		return nil
	}
	if c.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "role:        %s\n", st.Role)
	fmt.Fprintf(w, "node:        %s\n", st.NodeID)
	fmt.Fprintf(w, "dataset:     %s\n", st.DatasetID)
	fmt.Fprintf(w, "applied:     %d\n", st.AppliedIndex)
	fmt.Fprintf(w, "root index:  %d\n", st.RootIndex)
	fmt.Fprintf(w, "lag:         %s (%d indexes)\n", strconv.FormatFloat(st.LagSeconds, 'f', 3, 64)+"s", st.RootIndex-min(st.RootIndex, st.AppliedIndex))
	if st.Upstream != "" {
		fmt.Fprintf(w, "upstream:    %s\n", st.Upstream)
	}
	if st.DC != "" {
		fmt.Fprintf(w, "dc:          %s\n", st.DC)
	}
	if len(st.DCPeers) > 0 {
		fmt.Fprintf(w, "l2 peers:    %s\n", strings.Join(st.DCPeers, ", "))
	}
	if st.DiskFull {
		fmt.Fprintf(w, "disk full:   true (free space below the floor)\n")
	}
	if g := st.Group; g != nil {
		fmt.Fprintf(w, "group:       member %d (%s), leader %d, term %d, raft applied %d, commit %d\n", g.ID, g.State, g.Leader, g.Term, g.Applied, g.Commit)
		if len(g.DiskAlarms) > 0 {
			fmt.Fprintf(w, "disk alarm:  member %s (writes refused)\n", joinIDs(g.DiskAlarms))
		}
		for _, m := range g.Members {
			fmt.Fprintf(w, "  member %d  %s\n", m.ID, m.Addr)
		}
	}
	fmt.Fprintf(w, "children:    %d\n", len(st.Children))
	for _, ch := range st.Children {
		fmt.Fprintf(w, "  %s  node %s  sent up to %d\n", ch.Addr, ch.NodeID, ch.AppliedIndex)
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
func printTree(w goio.Writer, n *statustree.Node, first, rest string) {
	st := n.Status
	switch {
	case st == nil:
		fmt.Fprintf(w, "%s? %s  (no answer: %s)\n", first, n.Addr, n.Error)
		return
	case n.Repeat:
		fmt.Fprintf(w, "%s%s %s  node %s  (seen above)\n", first, st.Role, n.Addr, st.NodeID)
		return
	}
	dc := ""
	if st.DC != "" {
		dc = "  dc " + st.DC
	}
	fmt.Fprintf(w, "%s%s %s  node %s  applied %d  lag %.3fs (%d indexes)%s\n", first, st.Role, n.Addr, st.NodeID,
		st.AppliedIndex, st.LagSeconds, st.RootIndex-min(st.RootIndex, st.AppliedIndex), dc)
	for i, ch := range n.Children {
		branch, indent := "├── ", "│   "
		if i == len(n.Children)-1 {
			branch, indent = "└── ", "    "
		}
		printTree(w, ch, rest+branch, rest+indent)
	}
}

func (f *ServerFlag) childStatus(ctx context.Context, addr string) (client.Status, error) {
	cl, err := f.clientAt(addr)
	if err != nil {
		return client.Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, statustree.DefaultTimeout)
	defer cancel()
	return cl.Status(ctx)
}
