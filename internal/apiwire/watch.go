package apiwire

import (
	"fmt"

	"github.com/argent-kv/argent"
)

// Event is one line of a watch in its Go form: a batch or a progress marker.
type Event struct {
	// Index is the batch's index, or for a progress marker the index up to
	// which every matching batch has been sent.
	Index argent.Index
	// Progress is true for a progress marker, which has no Ops.
	Progress bool
	// Ops are the batch's operations on keys under the watched prefix, in
	// batch order. A delete_prefix op is included when its prefix and the
	// watched prefix overlap (the server decides).
	Ops []argent.Op
}

// NewWatchLine returns the watch line of a batch at index with the given
// operations (those that match the watched prefix).
func NewWatchLine(index argent.Index, ops []argent.Op) WatchLine {
	l := WatchLine{Index: index, Ops: make([]TxnOp, len(ops))}
	for i, op := range ops {
		l.Ops[i] = NewTxnOp(op)
	}
	return l
}

// NewProgressLine returns the progress marker for index.
func NewProgressLine(index argent.Index) WatchLine {
	return WatchLine{Index: index, Progress: true}
}

// Event returns the event l stands for. A line with an error returns that
// error as an *Error.
func (l *WatchLine) Event() (Event, error) {
	if l.Error != nil {
		return Event{}, NewError(HTTPStatus(l.Error.Code), *l.Error)
	}
	ev := Event{Index: l.Index, Progress: l.Progress}
	if len(l.Ops) > 0 {
		ev.Ops = make([]argent.Op, len(l.Ops))
		for i, o := range l.Ops {
			op, err := o.ToOp()
			if err != nil {
				return Event{}, fmt.Errorf("index %d op %d: %w", l.Index, i, err)
			}
			ev.Ops[i] = op
		}
	}
	return ev, nil
}
