// Package argent holds the vocabulary shared by every part of argent: log
// indexes, batches and their operations, committed log entries, a node's
// state, the values and items reads return, the limits on keys, values and
// batches, and the sentinel errors.
//
// argent distributes read-mostly data from one write path (the root) through a
// tree of nodes that pull an ordered log of committed batches and serve reads
// locally. Index N names the state after applying batches 1..N. See
// docs/ARCHITECTURE.md for the packages and the path of a write and a read.
package argent

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Index is a position in the log. Index N names the state after applying the
// committed batches 1..N; index 0 is the empty state before the first batch.
type Index uint64

// OpType says what an Op does.
type OpType uint8

// The operation types. Their numeric values are part of the wire format.
const (
	OpPut          OpType = 1 // set Key to Value
	OpDelete       OpType = 2 // remove Key
	OpDeletePrefix OpType = 3 // remove every key starting with Key
)

// String returns the name used for the type in the JSON API.
func (t OpType) String() string {
	switch t {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpDeletePrefix:
		return "delete_prefix"
	}
	return fmt.Sprintf("op(%d)", uint8(t))
}

// ParseOpType parses the JSON API name of an operation type.
func ParseOpType(s string) (OpType, error) {
	switch s {
	case "put":
		return OpPut, nil
	case "delete":
		return OpDelete, nil
	case "delete_prefix":
		return OpDeletePrefix, nil
	}
	return 0, fmt.Errorf("%w: unknown op %q", ErrInvalid, s)
}

// Op is one operation of a batch.
type Op struct {
	Type  OpType
	Key   []byte
	Value []byte // only for OpPut
}

// Condition guards a batch: the key's mod index must equal ModIndex when the
// batch commits. ModIndex 0 means the key must be absent.
type Condition struct {
	Key      []byte
	ModIndex Index
}

// Batch is an atomic list of operations, optionally guarded by conditions.
// Either every operation is applied at one index or none is.
type Batch struct {
	Conditions []Condition
	Ops        []Op
}

// Entry is a committed batch as it travels in the log. Conditions are checked
// at the root and are not part of the entry.
type Entry struct {
	Index Index
	// Time is the root's commit time, in Unix nanoseconds.
	Time int64
	// Chain is the chain hash after this entry: H(previous chain, entry).
	Chain Hash
	Ops   []Op
}

// State is a node's position in the log: the index of the last entry it
// applied, that entry's commit time at the root (Unix ns; 0 for index 0) and
// the chain hash after it. Two nodes with equal States hold the same history.
type State struct {
	Index Index
	Time  int64
	Chain Hash
}

// Value is a key's value as a read returns it: the bytes, and the mod index
// (the index of the batch that last wrote the key). An absent key has no
// Value: reads say so with ErrNotFound. Every tier that answers reads (a
// store, a proxy's cache, a replica asked by a proxy) speaks in Values, so a
// value keeps one shape on its way from disk to an answer.
type Value struct {
	Value    []byte
	ModIndex Index
}

// Item is a key with its Value, as reads of many keys (a scan) return
// them. Keys are bytes here; the JSON API carries them as strings.
type Item struct {
	Key []byte
	Value
}

// CommitTime returns Time as a time.Time.
func (e *Entry) CommitTime() time.Time { return time.Unix(0, e.Time) }

// Hash is a chain hash. Two nodes with equal chain hashes at one index hold the
// same history.
type Hash [32]byte

// DatasetID identifies a key space; it is made at random when a root is first
// created. The zero value means "not known yet".
type DatasetID [16]byte

// IsZero reports whether the ID is unset.
func (d DatasetID) IsZero() bool { return d == DatasetID{} }

// String returns the ID as 32 lowercase hex digits.
func (d DatasetID) String() string { return fmt.Sprintf("%x", d[:]) }

// ParseDatasetID parses the form String returns.
func ParseDatasetID(s string) (DatasetID, error) {
	var d DatasetID
	if len(s) != 32 {
		return d, fmt.Errorf("%w: dataset id %q is not 32 hex digits", ErrInvalid, s)
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("%w: dataset id %q: %v", ErrInvalid, s, err)
	}
	return d, nil
}

// Limits bounds the size of what a client may write. The zero value of a
// field means its default.
type Limits struct {
	MaxKey   int // default 1024 bytes; keys must also be at least 1 byte
	MaxValue int // default 32 MiB
	MaxBatch int // default 64 MiB: the sum of key and value bytes of a batch
}

// The default limits, from docs/CONTRACT.md section 4.
const (
	DefaultMaxKey   = 1024
	DefaultMaxValue = 32 << 20
	DefaultMaxBatch = 64 << 20
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxKey == 0 {
		l.MaxKey = DefaultMaxKey
	}
	if l.MaxValue == 0 {
		l.MaxValue = DefaultMaxValue
	}
	if l.MaxBatch == 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	return l
}

// CheckKey returns an ErrInvalid error when key breaks the limits.
func (l Limits) CheckKey(key []byte) error {
	l = l.WithDefaults()
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > l.MaxKey {
		return fmt.Errorf("%w: key of %d bytes is longer than the limit of %d", ErrTooLarge, len(key), l.MaxKey)
	}
	return nil
}

// CheckBatch returns an ErrInvalid (or ErrTooLarge) error when b is malformed
// or breaks the limits. An empty batch is invalid.
func (l Limits) CheckBatch(b *Batch) error {
	l = l.WithDefaults()
	if len(b.Ops) == 0 {
		return fmt.Errorf("%w: batch has no operations", ErrInvalid)
	}
	total := 0
	for _, c := range b.Conditions {
		if err := l.CheckKey(c.Key); err != nil {
			return fmt.Errorf("condition: %w", err)
		}
	}
	for i, op := range b.Ops {
		switch op.Type {
		case OpPut, OpDelete, OpDeletePrefix:
		default:
			return fmt.Errorf("%w: op %d has unknown type %d", ErrInvalid, i, op.Type)
		}
		if op.Type == OpDeletePrefix {
			if len(op.Key) > l.MaxKey {
				return fmt.Errorf("%w: op %d: prefix of %d bytes is longer than the limit of %d", ErrTooLarge, i, len(op.Key), l.MaxKey)
			}
		} else if err := l.CheckKey(op.Key); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
		if op.Type != OpPut && len(op.Value) > 0 {
			return fmt.Errorf("%w: op %d: %s carries a value", ErrInvalid, i, op.Type)
		}
		if len(op.Value) > l.MaxValue {
			return fmt.Errorf("%w: op %d: value of %d bytes is larger than the limit of %d", ErrTooLarge, i, len(op.Value), l.MaxValue)
		}
		total += len(op.Key) + len(op.Value)
	}
	if total > l.MaxBatch {
		return fmt.Errorf("%w: batch of %d bytes is larger than the limit of %d", ErrTooLarge, total, l.MaxBatch)
	}
	return nil
}

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrNotFound is returned when a key is absent at the index read.
	ErrNotFound = errors.New("argent: key not found")
	// ErrCompacted is returned when an index is older than the history a node
	// keeps (MVCC versions or log), so it cannot answer for it.
	ErrCompacted = errors.New("argent: index is older than the retained history")
	// ErrFuture is returned when an index is newer than the node's state.
	ErrFuture = errors.New("argent: index is newer than the node's state")
	// ErrTimeout is returned when a read's min_index was not reached within
	// its wait limit.
	ErrTimeout = errors.New("argent: state did not reach the requested index in time")
	// ErrInvalid is returned for malformed input: an empty key, a bad op, bad
	// JSON, a non-numeric index.
	ErrInvalid = errors.New("argent: invalid input")
	// ErrTooLarge is returned for a key, value or batch over the limits.
	ErrTooLarge = errors.New("argent: input too large")
	// ErrConditionFailed is returned (wrapped in a *ConditionError) when a
	// batch's condition does not hold; nothing was written.
	ErrConditionFailed = errors.New("argent: condition failed")
	// ErrDatasetMismatch is returned when a node is asked to follow a node or
	// load a snapshot of another dataset.
	ErrDatasetMismatch = errors.New("argent: dataset mismatch")
	// ErrChainMismatch is returned when a parent's chain hash at an index does
	// not match the child's: the two hold different histories.
	ErrChainMismatch = errors.New("argent: chain hash mismatch")
	// ErrCorruption is returned when a checksum, a length or an index sequence
	// shows that bytes were damaged.
	ErrCorruption = errors.New("argent: corruption")
	// ErrClosed is returned by operations on a closed store or node.
	ErrClosed = errors.New("argent: closed")
	// ErrUnavailable is returned when a node cannot serve a request now, for
	// example while it bootstraps from a snapshot or has no upstream.
	ErrUnavailable = errors.New("argent: unavailable")
	// ErrUnauthorized is returned when a node that checks tokens gets a
	// request with no token, or with one it does not know.
	ErrUnauthorized = errors.New("argent: unauthorized")
	// ErrForbidden is returned when a known token lacks the right (read or
	// write) on a key the request touches; nothing was read or written.
	ErrForbidden = errors.New("argent: forbidden")
)

// ConditionError says which condition of a batch failed.
type ConditionError struct {
	Key  []byte
	Want Index // the mod index the condition asked for; 0 = absent
	Got  Index // the key's mod index at commit; 0 = absent
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("argent: condition failed: key %q has mod index %d, want %d", e.Key, e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrConditionFailed) true.
func (e *ConditionError) Unwrap() error { return ErrConditionFailed }
