package tests

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// linInput is one operation on one key of the linearizability test.
type linInput struct {
	op     string // get, put, delete, cas
	key    string
	val    string       // put, cas
	expect argent.Index // cas: the mod index the condition asks for (0 = absent)
}

// linOutput is what the root answered.
type linOutput struct {
	unknown bool         // a write whose outcome the client did not learn
	failed  bool         // cas: 409, the condition did not hold
	index   argent.Index // a committed write's index
	pos     int          // a committed write's first op in its entry (see placeWrites)
	present bool         // get
	val     string       // get
	mod     argent.Index // get: Argent-Mod-Index
	s       argent.Index // get: Argent-Index
}

func (o linOutput) at() logPos { return logPos{o.index, o.pos} }

// logPos is where a write took effect: its entry's index and the position
// of its first op among the entry's ops. The root may merge the batches of
// several clients into one entry (docs/CONTRACT.md section 1, "Merged batch"),
// each acknowledged with the entry's index; they take effect in the order
// of their ops in the entry.
type logPos struct {
	index argent.Index
	op    int
}

// after reports whether p comes after q in the log.
func (p logPos) after(q logPos) bool {
	return p.index > q.index || p.index == q.index && p.op > q.op
}

// linState is the state of one key. After a write with an unknown outcome
// the key's mod index is not known until a read shows it.
type linState struct {
	present  bool
	val      string
	mod      argent.Index // when modKnown; 0 when absent
	modKnown bool
	last     logPos // a lower bound of the position of the key's last write
}

// kvModel is a key-value register per key with put, delete, get and a
// compare-and-set on the mod index, whose writes are numbered by their
// position in the log: a key's writes come at increasing positions in
// linearization order. Writes merged into one entry share its index and
// are ordered by their ops' order in it.
// linOp picks a client's next operation on key: a get (40 %), a put of val
// (30 %), a delete (10 %), or a put of val on condition (20 %) that key still
// has the mod index the client last saw (lastMod), now and then a wrong one
// on purpose.
func linOp(rng *rand.Rand, key, val string, lastMod map[string]argent.Index) linInput {
	in := linInput{key: key, val: val}
	switch p := rng.IntN(10); {
	case p < 4:
		in.op = "get"
	case p < 7:
		in.op = "put"
	case p < 8:
		in.op = "delete"
	default:
		in.op = "cas"
		in.expect = lastMod[key]
		if rng.IntN(4) == 0 {
			in.expect = argent.Index(rng.IntN(3)) // often wrong
		}
	}
	return in
}

// recordLin returns the history entry of one finished operation of client
// id, and updates the client's lastMod (the mod index its next conditional
// write expects). An operation of unknown outcome may take effect at any
// time later, so it returns at the end of time.
func recordLin(lastMod map[string]argent.Index, id int, in linInput, out linOutput, call, ret int64) porcupine.Operation {
	if out.unknown {
		ret = math.MaxInt64
	}
	switch {
	case in.op == "get" && out.present:
		lastMod[in.key] = out.mod
	case in.op == "get", in.op == "delete" && !out.unknown:
		lastMod[in.key] = 0
	case !out.unknown && !out.failed:
		lastMod[in.key] = out.index
	}
	return porcupine.Operation{ClientId: id, Input: in, Output: out, Call: call, Return: ret}
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = byKey[k]
		}
		return out
	},
	Init: func() []any { return []any{linState{modKnown: true}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.op {
		case "get":
			if out.present != s.present || out.present && out.val != s.val {
				return nil
			}
			if s.modKnown {
				if out.mod != s.mod {
					return nil
				}
				return []any{s}
			}
			// The write that set the mod index (one whose outcome is
			// unknown) came after the key's last known write, maybe
			// later in the same entry.
			if out.mod < s.last.index {
				return nil
			}
			if out.mod > s.last.index {
				s.last = logPos{index: out.mod}
			}
			s.mod, s.modKnown = out.mod, true
			return []any{s}
		case "put", "delete":
			next := linState{present: in.op == "put", modKnown: true}
			if next.present {
				next.val = in.val
			}
			if out.unknown {
				next.last = s.last
				next.modKnown = !next.present
				return []any{s, next}
			}
			if !out.at().after(s.last) {
				return nil
			}
			next.last = out.at()
			if next.present {
				next.mod = out.index
			}
			return []any{next}
		case "cas":
			// The condition holds when the key's mod index (0 when absent)
			// equals expect; with an unknown mod index a present key may
			// hold any expect but 0.
			mayHold := s.modKnown && s.mod == in.expect || !s.modKnown && in.expect != 0
			mayFail := !s.modKnown || s.mod != in.expect
			next := linState{present: true, val: in.val, modKnown: true}
			switch {
			case out.unknown:
				res := []any{s}
				if mayHold {
					next.modKnown, next.last = false, s.last
					res = append(res, next)
				}
				return res
			case out.failed:
				if mayFail {
					return []any{s}
				}
				return nil
			default:
				if !mayHold || !out.at().after(s.last) {
					return nil
				}
				next.mod, next.last = out.index, out.at()
				return []any{next}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		var res string
		switch {
		case out.unknown:
			res = "unknown"
		case in.op == "get" && !out.present:
			res = fmt.Sprintf("absent @S=%d", out.s)
		case in.op == "get":
			res = fmt.Sprintf("%q mod=%d @S=%d", out.val, out.mod, out.s)
		case out.failed:
			res = "condition failed"
		default:
			res = fmt.Sprintf("index %d (op %d)", out.index, out.pos)
		}
		switch in.op {
		case "put":
			return fmt.Sprintf("put(%s, %q) -> %s", in.key, in.val, res)
		case "cas":
			return fmt.Sprintf("cas(%s, mod==%d, %q) -> %s", in.key, in.expect, in.val, res)
		}
		return fmt.Sprintf("%s(%s) -> %s", in.op, in.key, res)
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		if !s.present {
			return "absent"
		}
		if !s.modKnown {
			return fmt.Sprintf("%q mod=?", s.val)
		}
		return fmt.Sprintf("%q mod=%d", s.val, s.mod)
	},
}

// TestRoot_Linearizable checks docs/CONTRACT.md section 3 promise 1 with porcupine:
// concurrent clients put, delete, get and compare-and-set (a txn conditioned
// on the mod index) a few keys at the root, and the history must be
// linearizable. It also checks that a read at the root reports an index S no
// lower than that of any write acknowledged before the read began.
func TestRoot_Linearizable(t *testing.T) {
	skipShort(t)
	seed := testSeed(t)
	root := cluster.StartRoot(t)
	c := newClient(t, root)

	const (
		clients  = 6
		opsEach  = 500
		duration = 4 * time.Second
	)
	keys := []string{"lin/0", "lin/1", "lin/2", "lin/3"}
	t0 := time.Now()
	deadline := t0.Add(duration)
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		errs    errSample
		valSeq  int
	)
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(seed, id)
			lastMod := map[string]argent.Index{}
			for n := 0; n < opsEach && time.Now().Before(deadline); n++ {
				mu.Lock()
				valSeq++
				val := fmt.Sprintf("c%d-%d", id, valSeq)
				mu.Unlock()
				in := linOp(rng, keys[rng.IntN(len(keys))], val, lastMod)
				call := time.Since(t0).Nanoseconds()
				out, ok, err := linDo(c, in)
				ret := time.Since(t0).Nanoseconds()
				if err != nil {
					mu.Lock()
					errs.add(in.op, err)
					mu.Unlock()
				}
				if !ok {
					continue // a failed read: no effect, leave it out
				}
				op := recordLin(lastMod, id, in, out, call, ret)
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d operations in %v; errors: %v", len(history), time.Since(t0).Round(time.Millisecond), &errs)
	if errs.total() > 0 {
		t.Errorf("operations failed without faults injected: %v", &errs)
	}

	checkReadIndexes(t, seed, history)
	entries, err := fetchLog(c, argent.Index(readStatus(t, c).AppliedIndex), 30*time.Second)
	if err != nil {
		t.Fatalf("seed %d: root's log: %v", seed, err)
	}
	placeWrites(t, history, entries)

	model := kvModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 60*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable")
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("argent-linearizability-%d.html", seed))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Logf("visualize: %v", err)
		}
		t.Errorf("seed %d: the root's history of %d operations is not linearizable; see %s", seed, len(history), path)
	default:
		t.Errorf("seed %d: porcupine could not decide in time (%v)", seed, res)
	}
}

// linDo sends in to the root. ok is false for a read that failed.
func linDo(c *client.Client, in linInput) (out linOutput, ok bool, err error) {
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	return linDoContext(ctx, c, in)
}

// linDoContext is linDo bounded by ctx.
func linDoContext(ctx context.Context, c *client.Client, in linInput) (out linOutput, ok bool, err error) {
	k := []byte(in.key)
	switch in.op {
	case "get":
		v, err := c.Get(ctx, k, client.ReadOptions{})
		switch {
		case err == nil:
			return linOutput{present: true, val: string(v.Value), mod: v.ModIndex, s: v.Index}, true, nil
		case errors.Is(err, argent.ErrNotFound):
			return linOutput{s: v.Index, mod: v.ModIndex}, true, nil
		}
		return out, false, err
	case "put":
		out.index, err = c.Put(ctx, k, []byte(in.val))
	case "delete":
		out.index, err = c.Delete(ctx, k)
	case "cas":
		out.index, err = c.Txn(ctx, argent.Batch{
			Conditions: []argent.Condition{{Key: k, ModIndex: in.expect}},
			Ops:        []argent.Op{{Type: argent.OpPut, Key: k, Value: []byte(in.val)}},
		})
		if errors.Is(err, argent.ErrConditionFailed) {
			return linOutput{failed: true}, true, nil
		}
	}
	if err != nil {
		// A 4xx other than a failed condition means not written, but none
		// is expected here: report it and count the write as unknown.
		return linOutput{unknown: true}, true, err
	}
	return out, true, nil
}

// placeWrites sets the position in its entry (linOutput.pos) of every
// acknowledged write of history from the root's log, and fails t for a
// write its entry does not hold. Deletes of one key merged into one entry
// are told apart by order only; they have the same effect, and are
// concurrent (both were sent before the entry committed and acknowledged
// after), so any order of them is as good.
func placeWrites(t *testing.T, history []porcupine.Operation, entries []logEntry) {
	t.Helper()
	taken := map[logPos]bool{}
	for i, op := range history {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		if in.op == "get" || out.unknown || out.failed {
			continue
		}
		if out.index == 0 || int(out.index) > len(entries) {
			t.Errorf("%s: the root's log ends at %d", kvModel.DescribeOperation(in, out), len(entries))
			continue
		}
		want := argent.Op{Type: argent.OpPut, Key: []byte(in.key), Value: []byte(in.val)}
		if in.op == "delete" {
			want = argent.Op{Type: argent.OpDelete, Key: []byte(in.key)}
		}
		e := entries[out.index-1]
		out.pos = -1
		for j, o := range e.Ops {
			if p := (logPos{out.index, j}); !taken[p] && opsEqual([]argent.Op{o}, []argent.Op{want}) {
				taken[p], out.pos = true, j
				break
			}
		}
		if out.pos < 0 {
			t.Errorf("%s, but entry %d holds %s", kvModel.DescribeOperation(in, out), out.index, fmtOps(e.Ops))
			continue
		}
		history[i].Output = out
	}
}

// checkReadIndexes checks, across keys, that a read's S is at least the
// index of every write acknowledged before the read was sent, and at least
// the mod index it reports. Writes merged into one entry share its index,
// which changes neither.
func checkReadIndexes(t *testing.T, seed uint64, history []porcupine.Operation) {
	t.Helper()
	type ev struct {
		at    int64
		index argent.Index
	}
	var acks []ev
	var reads []porcupine.Operation
	for _, op := range history {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		switch {
		case in.op == "get":
			reads = append(reads, op)
		case !out.unknown && !out.failed:
			acks = append(acks, ev{op.Return, out.index})
		}
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].at < acks[j].at })
	sort.Slice(reads, func(i, j int) bool { return reads[i].Call < reads[j].Call })
	rep := &reporter{t: t, what: "root read indexes", seed: seed}
	defer rep.done()
	var top argent.Index
	j := 0
	for _, r := range reads {
		for ; j < len(acks) && acks[j].at < r.Call; j++ {
			top = max(top, acks[j].index)
		}
		out := r.Output.(linOutput)
		if out.s < top {
			rep.errorf("get(%s) sent at +%v answered from S=%d, but index %d was acknowledged before it was sent", r.Input.(linInput).key, time.Duration(r.Call), out.s, top)
		}
		if out.mod > out.s {
			rep.errorf("get(%s) at +%v reports mod index %d above its S=%d", r.Input.(linInput).key, time.Duration(r.Call), out.mod, out.s)
		}
	}
}

// idx converts a count to an index, for tables.
func idx(n uint64) argent.Index { return argent.Index(n) }
