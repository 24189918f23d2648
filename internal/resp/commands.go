package resp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/api"
	"github.com/argent-kv/argent/internal/auth"
	"github.com/argent-kv/argent/internal/kv"
)

// Commands, case-insensitive:
//
//	PING [msg], ECHO msg, QUIT, SELECT 0, COMMAND ... (empty array),
//	AUTH [user] token, HELLO [2 [AUTH user token] [SETNAME name]], CLIENT SETNAME|GETNAME|SETINFO|ID|INFO, CONFIG GET save|appendonly
//	GET key, MGET key..., EXISTS key...
//	SCAN cursor [MATCH prefix*|key] [COUNT n]
//	INFO [section]
//	SET key value, DEL key...
//	READINDEX n
//
// Anything else gets "-ERR unknown command".

const (
	scanDefaultCount = 10
	scanMaxCount     = 10000
)

// cmdName upper-cases a command name into buf, for the switch in dispatch.
func cmdName(buf *[16]byte, b []byte) string {
	if len(b) > len(buf) {
		return string(bytes.ToUpper(b))
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return string(buf[:len(b)])
}

// dispatch runs one command; name is args[0] as cmdName gives it.
func (c *conn) dispatch(name string, args [][]byte) {
	c.s.m.command(name)
	w := &c.w
	if c.s.auth != nil && name != "AUTH" && name != "HELLO" && name != "QUIT" {
		if !c.authenticated() {
			w.error(c.noAuth())
			return
		}
		switch {
		case c.ratePaid:
			// The loop took this command's place in the rate, then found
			// it must wait: the goroutine runs it without a second one.
			c.ratePaid = false
		case name != "SET" && c.overRate(): // SET checks its rate in setDenied
			w.error(replyRate)
			return
		}
	}
	switch name {
	case "AUTH":
		c.authCmd(args)
	case "GET":
		if c.arity(args, 2, 2) {
			c.get(args[1])
		}
	case "MGET":
		if c.arity(args, 2, -1) {
			c.mget(args[1:])
		}
	case "EXISTS":
		if c.arity(args, 2, -1) {
			c.exists(args[1:])
		}
	case "SCAN":
		if c.arity(args, 2, -1) {
			c.scan(args[1:])
		}
	case "PING":
		switch len(args) {
		case 1:
			w.simple("PONG")
		case 2:
			w.bulk(args[1])
		default:
			c.wrongArity(args)
		}
	case "ECHO":
		if c.arity(args, 2, 2) {
			w.bulk(args[1])
		}
	case "QUIT":
		w.simple("OK")
		c.quit = true
	case "SELECT":
		if c.arity(args, 2, 2) {
			if string(args[1]) == "0" {
				w.simple("OK")
			} else {
				w.error("ERR DB index is out of range")
			}
		}
	case "COMMAND":
		w.array(0)
	case "CONFIG":
		if len(args) >= 2 && strings.EqualFold(string(args[1]), "GET") {
			c.configGet(args[2:])
		} else {
			w.error("ERR only CONFIG GET is supported")
		}
	case "HELLO":
		c.hello(args)
	case "CLIENT":
		c.client(args)
	case "INFO":
		c.info()
	case "SET":
		c.set(args)
	case "DEL":
		if c.arity(args, 2, -1) {
			c.del(args[1:])
		}
	case "READINDEX":
		if c.arity(args, 2, 2) {
			n, err := strconv.ParseUint(string(args[1]), 10, 64)
			if err != nil {
				w.error("ERR index is not an unsigned integer")
				return
			}
			c.minIndex = n
			w.simple("OK")
		}
	default:
		w.error(fmt.Sprintf("ERR unknown command '%s'", quoteName(args[0])))
	}
}

// quoteName returns a command name fit for an error message: at most 64
// bytes, printable ASCII only.
func quoteName(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = printable(c)
	}
	return string(out)
}

// arity checks that args has between lo and hi elements (hi -1: no upper
// bound) and writes the error reply if not.
func (c *conn) arity(args [][]byte, lo, hi int) bool {
	if len(args) < lo || hi >= 0 && len(args) > hi {
		c.wrongArity(args)
		return false
	}
	return true
}

func (c *conn) wrongArity(args [][]byte) {
	c.w.error(fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(quoteName(args[0]))))
}

// readIndex returns the index to serve this command's reads at: the
// published applied index, after waiting for the connection's READINDEX. It
// writes the error reply and returns false when the wait fails, or with
// "-NOTREADY" on a node that has not reached its first state (an empty
// store's nil replies would say keys are absent that the dataset holds).
func (c *conn) readIndex() (argent.Index, bool) {
	st := c.s.b.Reader()
	at := st.Applied()
	if want := argent.Index(c.minIndex); at < want {
		if c.onLoop {
			c.wouldBlock = true
			return 0, false
		}
		// Flush what is answered already: the wait may be long.
		c.flush()
		got, err := st.WaitApplied(c.ctx, c.s.readIndexWait, want)
		if err != nil {
			c.w.error(fmt.Sprintf("TIMEOUT applied index %d did not reach READINDEX %d", got, want))
			return 0, false
		}
		at = got
	}
	if c.s.ready != nil {
		if err := c.s.ready.Ready(); err != nil {
			c.w.error("NOTREADY " + err.Error())
			return 0, false
		}
		// The first state may have come after at was read.
		at = max(at, st.Applied())
	}
	return at, true
}

// checkKeys writes an error reply and returns false if a key breaks the limits.
func (c *conn) checkKeys(keys [][]byte) bool {
	l := c.s.b.Limits()
	for _, k := range keys {
		if err := l.CheckKey(k); err != nil {
			c.w.error("ERR " + err.Error())
			return false
		}
	}
	return true
}

// lookup reads key at index at; a missing key gives ok false. On the
// event loop it reads only what the node answers without waiting, and
// otherwise sets wouldBlock.
func (c *conn) lookup(key []byte, at argent.Index) (val []byte, ok bool, err error) {
	var v argent.Value
	switch r := c.s.b.Reader(); {
	case !c.onLoop:
		v, err = r.Get(c.ctx, key, at)
	default:
		var answered bool
		if v, answered, err = getOnLoop(c.ctx, r, key, at); !answered {
			c.wouldBlock = true
			return nil, false, nil
		}
	}
	if errors.Is(err, argent.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v.Value, true, nil
}

// getOnLoop reads key at index at if r can answer without waiting: a
// kv.Store reads the node's own disk; an api.LocalReader says whether it
// can. answered is false otherwise.
func getOnLoop(ctx context.Context, r api.Reader, key []byte, at argent.Index) (v argent.Value, answered bool, err error) {
	switch r := r.(type) {
	case *kv.Store:
		v, err = r.Get(ctx, key, at)
		return v, true, err
	case api.LocalReader:
		return r.GetLocal(ctx, key, at)
	}
	return argent.Value{}, false, nil
}

// lookupMany reads every key at index at: found[i] is false where keys[i]
// is missing. A node whose reader reads keys better together (a proxy
// resolves all its misses in one lookup, api.ManyReader) gets them
// together. On the event loop only a kv.Store is read, key by key; other
// readers set wouldBlock (trying a proxy's keys locally first would count
// its hits twice when one key then misses).
func (c *conn) lookupMany(keys [][]byte, at argent.Index) (vals [][]byte, found []bool, err error) {
	vals, found = make([][]byte, len(keys)), make([]bool, len(keys))
	if _, local := c.s.b.Reader().(*kv.Store); c.onLoop && !local {
		c.wouldBlock = true
		return nil, nil, nil
	}
	if mr, ok := c.s.b.Reader().(api.ManyReader); ok {
		vs, fs, err := mr.GetMany(c.ctx, keys, at)
		if err != nil {
			return nil, nil, err
		}
		for i := range vs {
			vals[i], found[i] = vs[i].Value, fs[i]
		}
		return vals, found, nil
	}
	for i, k := range keys {
		if vals[i], found[i], err = c.lookup(k, at); err != nil {
			return nil, nil, err
		}
	}
	return vals, found, nil
}

func (c *conn) get(key []byte) {
	if !c.checkKeys([][]byte{key}) || !c.allowed(auth.Read, key) {
		return
	}
	at, ok := c.readIndex()
	if !ok {
		return
	}
	v, found, err := c.lookup(key, at)
	switch {
	case c.wouldBlock:
	case err != nil:
		c.w.error("ERR " + err.Error())
	case !found:
		c.w.null()
	default:
		c.w.bulk(v)
	}
}

func (c *conn) mget(keys [][]byte) {
	if !c.checkKeys(keys) || !c.allowed(auth.Read, keys...) {
		return
	}
	at, ok := c.readIndex()
	if !ok {
		return
	}
	// Read every key before replying, so that an error can still be the
	// whole reply. Values are not copied: the store does not modify them.
	vals, found, err := c.lookupMany(keys, at)
	if c.wouldBlock {
		return
	}
	if err != nil {
		c.w.error("ERR " + err.Error())
		return
	}
	c.w.array(len(keys))
	for i := range keys {
		if found[i] {
			c.w.bulk(vals[i])
		} else {
			c.w.null()
		}
	}
}

// exists counts the keys present at one index; a key named twice counts
// twice, as in Redis.
func (c *conn) exists(keys [][]byte) {
	if !c.checkKeys(keys) || !c.allowed(auth.Read, keys...) {
		return
	}
	at, ok := c.readIndex()
	if !ok {
		return
	}
	n, err := c.count(keys, at)
	if c.wouldBlock {
		return
	}
	if err != nil {
		c.w.error("ERR " + err.Error())
		return
	}
	c.w.integer(n)
}

func (c *conn) count(keys [][]byte, at argent.Index) (int, error) {
	_, found, err := c.lookupMany(keys, at)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range found {
		if f {
			n++
		}
	}
	return n, nil
}

// scan serves SCAN cursor [MATCH pattern] [COUNT n]. The cursor is "0" or
// the hex encoding of the last key returned. Only patterns that are a
// literal prefix followed by one '*', or a literal key, are supported.
func (c *conn) scan(args [][]byte) {
	var after []byte
	if cur := string(args[0]); cur != "0" {
		k, err := hex.DecodeString(cur)
		if err != nil || len(k) == 0 {
			c.w.error("ERR invalid cursor")
			return
		}
		after = k
	}
	var prefix []byte
	exact := false
	count := scanDefaultCount
	for i := 1; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.w.error("ERR syntax error")
			return
		}
		opt, val := strings.ToUpper(string(args[i])), args[i+1]
		switch opt {
		case "MATCH":
			p, ex, ok := parsePattern(val)
			if !ok {
				c.w.error("ERR only prefix* patterns are supported")
				return
			}
			prefix, exact = p, ex
		case "COUNT":
			n, err := strconv.Atoi(string(val))
			if err != nil || n < 1 {
				c.w.error("ERR value is not an integer or out of range")
				return
			}
			count = min(n, scanMaxCount)
		default:
			c.w.error("ERR syntax error")
			return
		}
	}
	at, ok := c.readIndex()
	if !ok {
		return
	}
	if exact {
		var keys [][]byte
		// A key the token may not read is left out, as a scan's are.
		if reply, _ := c.denied(auth.Read, prefix); after == nil && reply == "" {
			_, f, err := c.lookup(prefix, at)
			if err != nil {
				c.w.error("ERR " + err.Error())
				return
			}
			if f {
				keys = append(keys, prefix)
			}
		}
		c.scanReply("0", keys)
		return
	}
	// A token sees only the keys it may read: the scan walks those ranges.
	items, more, err := api.ScanRanges(c.ctx, c.s.b.Reader(), c.readRanges(prefix), after, count, at)
	if err != nil {
		c.w.error("ERR " + err.Error())
		return
	}
	keys := make([][]byte, len(items))
	for i := range items {
		keys[i] = items[i].Key
	}
	next := "0"
	if more && len(items) > 0 {
		next = hex.EncodeToString(items[len(items)-1].Key)
	}
	c.scanReply(next, keys)
}

func (c *conn) scanReply(cursor string, keys [][]byte) {
	c.w.array(2)
	c.w.bulkString(cursor)
	c.w.array(len(keys))
	for _, k := range keys {
		c.w.bulk(k)
	}
}

// parsePattern accepts a glob pattern that is a literal followed by one
// trailing '*' (a prefix; "*" alone is every key) or a literal (one key).
// A literal may escape a special character with a backslash.
func parsePattern(p []byte) (lit []byte, exact, ok bool) {
	exact = true
	if n := len(p); n > 0 && p[n-1] == '*' && evenBackslashes(p[:n-1]) {
		exact = false
		p = p[:n-1]
	}
	lit = make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', ']':
			return nil, false, false
		case '\\':
			if i+1 == len(p) {
				return nil, false, false
			}
			i++
		}
		lit = append(lit, p[i])
	}
	if exact && len(lit) == 0 {
		return nil, false, false
	}
	return lit, exact, true
}

// evenBackslashes reports whether p ends in an even run of backslashes
// (maybe none), so that a '*' after it is a real wildcard.
func evenBackslashes(p []byte) bool {
	n := 0
	for i := len(p) - 1; i >= 0 && p[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}

// info writes the node's replication state in the INFO format.
func (c *conn) info() {
	st := c.s.b.Status()
	var b strings.Builder
	b.WriteString("# Server\r\nredis_version:7.0.0\r\nargent:1\r\n\r\n")
	b.WriteString("# Replication\r\n")
	fmt.Fprintf(&b, "role:%s\r\n", st.Role)
	fmt.Fprintf(&b, "argent_applied_index:%d\r\n", st.AppliedIndex)
	fmt.Fprintf(&b, "argent_root_index:%d\r\n", st.RootIndex)
	fmt.Fprintf(&b, "argent_lag_seconds:%.3f\r\n", st.LagSeconds)
	fmt.Fprintf(&b, "argent_dataset_id:%s\r\n", st.DatasetID)
	c.w.bulkString(b.String())
}

func (c *conn) hello(args [][]byte) {
	if len(args) >= 2 && string(args[1]) != "2" {
		c.w.error("NOPROTO unsupported protocol version")
		return
	}
	var secret []byte
	for i := 2; i < len(args); {
		switch opt := strings.ToUpper(string(args[i])); {
		case opt == "AUTH" && i+2 < len(args):
			secret = args[i+2] // the user name is ignored, as AUTH's
			i += 3
		case opt == "SETNAME" && i+1 < len(args):
			i += 2
		default:
			c.w.error(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", quoteName(args[i])))
			return
		}
	}
	switch {
	case secret != nil:
		if !c.login(secret) {
			return
		}
	case c.s.auth != nil && !c.authenticated():
		c.noAuth()
		c.w.error(replyHelloAuth)
		return
	}
	c.w.array(14)
	for _, s := range []string{"server", "argent", "version", "7.0.0"} {
		c.w.bulkString(s)
	}
	c.w.bulkString("proto")
	c.w.integer(2)
	c.w.bulkString("id")
	c.w.integer(0)
	for _, s := range []string{"mode", "standalone", "role", c.s.b.Status().Role} {
		c.w.bulkString(s)
	}
	c.w.bulkString("modules")
	c.w.array(0)
}

func (c *conn) client(args [][]byte) {
	if len(args) < 2 {
		c.wrongArity(args)
		return
	}
	switch strings.ToUpper(string(args[1])) {
	case "SETNAME", "SETINFO":
		c.w.simple("OK")
	case "GETNAME":
		c.w.null()
	case "ID":
		c.w.integer(0)
	case "INFO":
		c.w.bulkString("id=0 addr=" + c.remote + " db=0\n")
	default:
		c.w.error("ERR unsupported CLIENT subcommand")
	}
}

// write sends b through the backend and writes an error reply on failure.
func (c *conn) write(b argent.Batch) bool {
	if err := c.s.b.Limits().CheckBatch(&b); err != nil {
		c.w.error("ERR " + err.Error())
		return false
	}
	c.flush()
	ctx, cancel := context.WithTimeout(c.s.ctx, writeTimeout)
	defer cancel()
	if _, err := c.s.b.Write(ctx, b); err != nil {
		c.w.error("ERR " + err.Error())
		return false
	}
	return true
}

func (c *conn) set(args [][]byte) {
	b, reply := c.setBatch(args)
	if reply == "" {
		reply = c.setDenied(b.Ops[0].Key)
	}
	if reply != "" {
		c.w.error(reply)
		return
	}
	if c.write(b) {
		c.w.simple("OK")
	}
}

// setBatch returns the batch of a SET command, or the error reply that
// refuses it.
func (c *conn) setBatch(args [][]byte) (argent.Batch, string) {
	switch {
	case len(args) > 3:
		return argent.Batch{}, "ERR SET options are not supported"
	case len(args) < 3:
		return argent.Batch{}, fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(quoteName(args[0])))
	}
	// One copy of key and value: args alias the input buffer.
	kv := make([]byte, len(args[1])+len(args[2]))
	n := copy(kv, args[1])
	copy(kv[n:], args[2])
	op := argent.Op{Type: argent.OpPut, Key: kv[:n:n], Value: kv[n:]}
	b := argent.Batch{Ops: []argent.Op{op}}
	if err := c.s.b.Limits().CheckBatch(&b); err != nil {
		return argent.Batch{}, "ERR " + err.Error()
	}
	return b, ""
}

// pendingWrite is a SET queued by queueSet: its result, or the error reply
// that refused it.
type pendingWrite struct {
	res   chan error
	reply string
}

// maxPendingWrites bounds the SETs one connection has in flight; past it,
// a command goroutine waits for those before, and the loop takes no more
// input from the connection.
const maxPendingWrites = 1024

// queueSet submits a SET from a command goroutine without waiting for its
// commit, so that a pipeline's SETs commit together (the root merges them);
// awaitWrites writes their replies in order before any other command's.
func (c *conn) queueSet(args [][]byte) {
	c.s.m.command("SET")
	if len(c.pending) >= maxPendingWrites {
		c.awaitWrites()
	}
	b, reply := c.setBatch(args)
	if reply == "" {
		reply = c.setDenied(b.Ops[0].Key)
	}
	if reply == "" {
		res := make(chan error, 1)
		if c.s.async.SubmitWrite(b, func(_ argent.Index, err error) { res <- err }) {
			c.pending = append(c.pending, pendingWrite{res: res})
			return
		}
		// No room to queue it: write it as Write does, after the others.
		c.awaitWrites()
		if c.write(b) {
			c.w.simple("OK")
		}
		return
	}
	c.pending = append(c.pending, pendingWrite{reply: reply})
}

// awaitWrites waits for the queued SETs, in order, and writes their
// replies.
func (c *conn) awaitWrites() {
	if len(c.pending) == 0 {
		return
	}
	c.flush()
	timeout := time.NewTimer(writeTimeout)
	defer timeout.Stop()
	for i, p := range c.pending {
		if p.reply == "" {
			select {
			case err := <-p.res:
				if err != nil {
					p.reply = "ERR " + err.Error()
				}
			case <-timeout.C:
				p.reply = "ERR " + context.DeadlineExceeded.Error()
			case <-c.s.ctx.Done():
				p.reply = "ERR " + c.s.ctx.Err().Error()
			}
		}
		if p.reply != "" {
			c.w.error(p.reply)
		} else {
			c.w.simple("OK")
		}
		c.pending[i] = pendingWrite{}
	}
	c.pending = c.pending[:0]
}

// loopSet submits a SET from the loop, if it can go without waiting: a
// valid SET the backend queues at once. Its reply comes in setDone. It
// reports false when the SET must wait: the caller keeps it for later (or
// for a goroutine).
func (c *conn) loopSet(args [][]byte) bool {
	if c.waiting >= maxPendingWrites {
		return false
	}
	b, reply := c.setBatch(args)
	if reply == "" {
		if r, _ := c.denied(auth.Write, b.Ops[0].Key); r != "" && c.waiting > 0 {
			return false // the error reply must follow the replies pending
		}
		reply = c.setDenied(b.Ops[0].Key)
	}
	if reply != "" {
		if c.waiting > 0 {
			return false // the error reply must follow the replies pending
		}
		c.s.m.command("SET")
		c.w.error(reply)
		return true
	}
	c.mu.Lock()
	c.mu.submitted++
	c.mu.Unlock()
	if c.onSetDone == nil {
		c.onSetDone = c.setDone // one func value for the connection's SETs
	}
	if !c.s.async.SubmitWrite(b, c.onSetDone) {
		c.mu.Lock()
		c.mu.submitted--
		c.mu.Unlock()
		return false
	}
	c.s.m.command("SET")
	c.waiting++
	return true
}

// setDone receives the result of a SET the loop submitted, on a committer
// goroutine: it queues the reply and wakes the loop to write it (see
// takeReplies). The results come in the order the SETs were submitted.
func (c *conn) setDone(_ argent.Index, err error) {
	c.mu.Lock()
	w := writer{buf: c.mu.replies}
	if err != nil {
		w.error("ERR " + err.Error())
	} else {
		w.simple("OK")
	}
	c.mu.replies = w.buf
	c.mu.completed++
	if c.mu.drained != nil && c.mu.completed == c.mu.submitted {
		close(c.mu.drained)
		c.mu.drained = nil
	}
	wake := !c.mu.waking
	c.mu.waking = true
	c.mu.Unlock()
	if wake {
		_ = c.gc.Wake(nil) // fails only on a closed connection
	}
}

// takeReplies moves the replies of the SETs that committed since the last
// call to the connection's replies, on the loop, in order.
func (c *conn) takeReplies() {
	c.mu.Lock()
	out, n := c.mu.replies, c.mu.completed
	c.mu.replies, c.mu.completed, c.mu.waking = nil, 0, false
	c.mu.submitted -= n
	c.mu.Unlock()
	c.w.buf = append(c.w.buf, out...)
	c.waiting -= n
}

// del deletes keys in one batch. Its reply, the number of keys that
// existed, is counted by a read just before the write, not atomically with
// it: a concurrent write may change what the delete actually removed.
func (c *conn) del(keys [][]byte) {
	if !c.checkKeys(keys) || !c.allowed(auth.Write, keys...) {
		return
	}
	at, ok := c.readIndex()
	if !ok {
		return
	}
	seen := make(map[string]bool, len(keys))
	var ops []argent.Op
	n := 0
	for _, k := range keys {
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		_, f, err := c.lookup(k, at)
		if err != nil {
			c.w.error("ERR " + err.Error())
			return
		}
		if f {
			n++
		}
		ops = append(ops, argent.Op{Type: argent.OpDelete, Key: bytes.Clone(k)})
	}
	if c.write(argent.Batch{Ops: ops}) {
		c.w.integer(n)
	}
}

// configGet answers CONFIG GET for the parameters redis-benchmark asks
// about (persistence is argent's own business), and nothing for the rest.
func (c *conn) configGet(params [][]byte) {
	var out []string
	for _, p := range params {
		switch strings.ToLower(string(p)) {
		case "save":
			out = append(out, "save", "")
		case "appendonly":
			out = append(out, "appendonly", "no")
		}
	}
	c.w.array(len(out))
	for _, s := range out {
		c.w.bulkString(s)
	}
}
