package tests

import (
	"fmt"
	"slices"
	"strings"

	"github.com/argent-kv/argent"
)

// This file splits a log entry into the client batches it holds. The root
// may merge the client batches that arrive while it commits into one entry
// (docs/CONTRACT.md section 1, "Merged batch"): one index, the client batches'
// ops concatenated in arrival order, each client batch whole, each
// batch's conditions checked against the state the batches before it in
// the entry left. So one index may be acknowledged to several clients, and
// the write checker (workload.checkWrites) must find, for each entry, the
// client batches whose concatenation its ops are. With one batch per entry
// (the root before merging) every entry is a concatenation of one.

// opKey names one op exactly; opsKey(ops) is the concatenation of the
// opKey of each op.
func opKey(op argent.Op) string { return fmt.Sprintf("%d:%q:%q;", op.Type, op.Key, op.Value) }

// batchClass names a batch exactly, ops and conditions: two writes of one
// class are interchangeable in an entry.
func batchClass(b argent.Batch) string {
	var sb strings.Builder
	sb.WriteString(opsKey(b.Ops))
	for _, c := range b.Conditions {
		fmt.Fprintf(&sb, "if(%q=%d);", c.Key, c.ModIndex)
	}
	return sb.String()
}

// writePool holds the writes whose outcome the client did not learn and
// that no entry holds yet: each may be in one entry, or in none.
type writePool struct {
	byFirst map[string][]*writeRec // by the opKey of the first op
	used    map[*writeRec]bool     // found in an entry
}

func newWritePool(ws []*writeRec) *writePool {
	p := &writePool{byFirst: map[string][]*writeRec{}, used: map[*writeRec]bool{}}
	for _, w := range ws {
		if len(w.batch.Ops) > 0 {
			k := opKey(w.batch.Ops[0])
			p.byFirst[k] = append(p.byFirst[k], w)
		}
	}
	return p
}

// take marks w as found in an entry.
func (p *writePool) take(w *writeRec) { p.used[w] = true }

// modWithin returns key's mod index (0 when absent) in the state that the
// batches before e and the first p ops of e leave: what a condition of a
// client batch that starts at op p of e is checked against.
func modWithin(tr *truth, key string, e logEntry, p int) argent.Index {
	_, mod, _ := tr.at(key, e.Index-1)
	for _, op := range e.Ops[:p] {
		switch {
		case op.Type == argent.OpPut && string(op.Key) == key:
			mod = e.Index
		case op.Type == argent.OpDelete && string(op.Key) == key:
			mod = 0
		case op.Type == argent.OpDeletePrefix && strings.HasPrefix(key, string(op.Key)):
			mod = 0
		}
	}
	return mod
}

// maxMatchSteps bounds the search of one entry: batches that can be told
// apart by their ops (the workloads' values are unique) need a few steps
// per batch.
const maxMatchSteps = 1_000_000

// entryMatch searches for the client batches whose concatenation is e's
// ops: every write of must (acknowledged with e's index) exactly once, and
// any unused writes of pool (unknown outcome) at most once each, in the
// order the ops show. With conds, each batch's conditions must hold
// against the state the batches before it left.
type entryMatch struct {
	tr       *truth
	e        logEntry
	must     []*writeRec
	mustCls  []string
	pool     *writePool
	conds    bool
	steps    int
	usedMust []bool
	usedPool map[*writeRec]bool
	order    []*writeRec
}

// matchEntry returns the client batches of e in log order, or ok false if
// e is not a concatenation of them. decided is false when the search ran
// out of steps; ok is false then too.
func matchEntry(tr *truth, e logEntry, must []*writeRec, pool *writePool, conds bool) (order []*writeRec, ok, decided bool) {
	m := &entryMatch{tr: tr, e: e, must: must, pool: pool, conds: conds, steps: maxMatchSteps,
		usedMust: make([]bool, len(must)), usedPool: map[*writeRec]bool{}}
	for _, w := range must {
		m.mustCls = append(m.mustCls, batchClass(w.batch))
	}
	if m.from(0) {
		return m.order, true, true
	}
	return nil, false, m.steps >= 0
}

// from reports whether e's ops from position p on split into the
// acknowledged batches not used yet and any unused pool writes.
func (m *entryMatch) from(p int) bool {
	if m.steps--; m.steps < 0 {
		return false
	}
	left := 0 // ops of the acknowledged batches not used yet
	for i, w := range m.must {
		if !m.usedMust[i] {
			left += len(w.batch.Ops)
		}
	}
	if p == len(m.e.Ops) {
		return left == 0
	}
	if left > len(m.e.Ops)-p {
		return false
	}
	tried := map[string]bool{} // classes tried at p: the same class fails the same way
	for i, w := range m.must {
		if m.usedMust[i] || tried[m.mustCls[i]] || !m.fits(w, p) {
			continue
		}
		tried[m.mustCls[i]] = true
		m.usedMust[i] = true
		m.order = append(m.order, w)
		if m.from(p + len(w.batch.Ops)) {
			return true
		}
		m.usedMust[i] = false
		m.order = m.order[:len(m.order)-1]
	}
	clear(tried)
	for _, w := range m.pool.byFirst[opKey(m.e.Ops[p])] {
		if m.pool.used[w] || m.usedPool[w] || !m.fits(w, p) {
			continue
		}
		c := batchClass(w.batch)
		if tried[c] {
			continue
		}
		tried[c] = true
		m.usedPool[w] = true
		m.order = append(m.order, w)
		if m.from(p + len(w.batch.Ops)) {
			return true
		}
		delete(m.usedPool, w)
		m.order = m.order[:len(m.order)-1]
	}
	return false
}

// fits reports whether w's ops are e's ops from p on and, with conds, its
// conditions hold there.
func (m *entryMatch) fits(w *writeRec, p int) bool {
	n := len(w.batch.Ops)
	if n == 0 || p+n > len(m.e.Ops) || !opsEqual(w.batch.Ops, m.e.Ops[p:p+n]) {
		return false
	}
	if m.conds {
		for _, c := range w.batch.Conditions {
			if modWithin(m.tr, string(c.Key), m.e, p) != c.ModIndex {
				return false
			}
		}
	}
	return true
}

// containsRun reports whether run is a contiguous part of ops.
func containsRun(ops, run []argent.Op) bool {
	for i := 0; i+len(run) <= len(ops); i++ {
		if opsEqual(ops[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// reportConditions reports the conditions that did not hold for the
// client batches of e, in order, against the state the batches before
// each left.
func reportConditions(rep *reporter, tr *truth, e logEntry, order []*writeRec) {
	p := 0
	for n, wr := range order {
		what := fmt.Sprintf("%s: txn at index %d acknowledged", wr.worker, e.Index)
		if wr.outcome != acked {
			what = fmt.Sprintf("%s: txn with unknown outcome committed at index %d", wr.worker, e.Index)
		}
		for _, c := range wr.batch.Conditions {
			mod := modWithin(tr, string(c.Key), e, p)
			if mod == c.ModIndex {
				continue
			}
			at := fmt.Sprint(e.Index - 1)
			if n > 0 {
				at = fmt.Sprintf("%d and the %d client batches before it in entry %d (%s)", e.Index-1, n, e.Index, fmtOps(e.Ops[:p]))
			}
			rep.errorf("%s with condition mod_index(%q)=%d, but its mod index at %s was %d\n  %s",
				what, c.Key, c.ModIndex, at, mod, tr.describe(string(c.Key), e.Index-1, nil))
		}
		p += len(wr.batch.Ops)
	}
}

// entryDiagnosis explains why an entry is not a concatenation of whole
// client batches: it walks the entry's ops and takes, at each position, a
// batch acknowledged with the entry's index, else one with unknown
// outcome, else names the batch (acknowledged elsewhere, refused, or only
// a part of a batch) or the ops no client sent.
type entryDiagnosis struct {
	rep    *reporter
	writes []*writeRec
	pool   *writePool
	byOp   map[string][]*writeRec // every write by the opKey of each of its ops
}

func (d *entryDiagnosis) holding(op argent.Op) []*writeRec {
	if d.byOp == nil {
		d.byOp = map[string][]*writeRec{}
		for _, wr := range d.writes {
			seen := map[string]bool{}
			for _, o := range wr.batch.Ops {
				if k := opKey(o); !seen[k] {
					seen[k] = true
					d.byOp[k] = append(d.byOp[k], wr)
				}
			}
		}
	}
	return d.byOp[opKey(op)]
}

func (d *entryDiagnosis) entry(e logEntry, must []*writeRec) {
	used := make([]bool, len(must))
	var found []string // what was found in e, in op order
	where := func(from, to int) string {
		s := fmtOps(e.Ops[from:to])
		if to-from < len(e.Ops) {
			s += fmt.Sprintf(" (ops %d..%d of its %d)", from, to-1, len(e.Ops))
		}
		return s
	}
	run := -1 // start of the ops no batch was found for yet
	flush := func(end int) {
		if run < 0 {
			return
		}
		ops := e.Ops[run:end]
		msg := fmt.Sprintf("index %d holds %s, which no client sent (or which committed more than once)", e.Index, where(run, end))
		for _, wr := range d.holding(ops[0]) {
			if len(wr.batch.Ops) > len(ops) && containsRun(wr.batch.Ops, ops) {
				msg = fmt.Sprintf("index %d holds %s, which is only part of the batch %s sent (%s %s, %s): a client batch must stay whole in one entry",
					e.Index, where(run, end), wr.worker, wr.kind, fmtOps(wr.batch.Ops), fmtOutcome(wr))
				break
			}
		}
		found = append(found, msg)
		run = -1
	}
	fitsAt := func(wr *writeRec, p int) bool {
		n := len(wr.batch.Ops)
		return n > 0 && p+n <= len(e.Ops) && opsEqual(wr.batch.Ops, e.Ops[p:p+n])
	}
	for p := 0; p < len(e.Ops); {
		var got *writeRec
		for i, wr := range must {
			if !used[i] && fitsAt(wr, p) {
				used[i], got = true, wr
				break
			}
		}
		if got == nil {
			for _, wr := range d.pool.byFirst[opKey(e.Ops[p])] {
				if !d.pool.used[wr] && fitsAt(wr, p) {
					d.pool.take(wr)
					got = wr
					break
				}
			}
		}
		if got == nil {
			for _, wr := range d.holding(e.Ops[p]) {
				if wr.outcome != unknown && fitsAt(wr, p) && (wr.outcome != acked || wr.index != e.Index) {
					got = wr
					break
				}
			}
			if got != nil {
				flush(p)
				found = append(found, fmt.Sprintf("index %d holds %s, which %s sent and was %s",
					e.Index, where(p, p+len(got.batch.Ops)), got.worker, fmtOutcome(got)))
			}
		}
		if got == nil {
			if run < 0 {
				run = p
			}
			p++
			continue
		}
		flush(p)
		p += len(got.batch.Ops)
	}
	flush(len(e.Ops))
	for i, wr := range must {
		if !used[i] {
			d.rep.errorf("%s: acknowledged %s at index %d with ops %s, but the log holds %s there",
				wr.worker, wr.kind, wr.index, fmtOps(wr.batch.Ops), fmtOps(e.Ops))
		}
	}
	for _, msg := range found {
		d.rep.errorf("%s", msg)
	}
	if len(found) == 0 && !slices.Contains(used, false) {
		// Every batch was found whole: the order or the conditions of the
		// greedy walk differ from any split the search accepts.
		d.rep.errorf("index %d holds %s: no order of the client batches that claimed it makes these ops", e.Index, fmtOps(e.Ops))
	}
}

// fmtOutcome says what the client learned of wr.
func fmtOutcome(wr *writeRec) string {
	switch wr.outcome {
	case acked:
		return fmt.Sprintf("acknowledged at index %d", wr.index)
	case rejected:
		return fmt.Sprintf("refused with %v", wr.err)
	}
	return "of unknown outcome"
}
