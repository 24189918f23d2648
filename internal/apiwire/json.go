package apiwire

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/argent-kv/argent"
)

// The JSON shapes of the HTTP API (docs/CONTRACT.md section 4). The server encodes
// and decodes these types; the client re-exports them. See the package doc
// for how keys and values travel.

// IndexResponse is the answer to a write: PUT and DELETE /v1/kv/{key} and
// POST /v1/txn. Shape: {"index":N}.
type IndexResponse struct {
	Index argent.Index `json:"index"`
}

// MGetRequest is the body of POST /v1/mget. Shape: {"keys":["k","j"]}.
type MGetRequest struct {
	Keys []string `json:"keys"`
}

// MGetResponse is the answer to POST /v1/mget: every key read at one index,
// one item per key in the order of the request. Shape:
// {"index":S,"items":[{"key":"k","value":"aGk=","mod_index":7},{"key":"j","absent":true}]}.
type MGetResponse struct {
	Index argent.Index `json:"index"`
	Items []Item       `json:"items"`
}

// Item is one key of an mget answer or a scan page: the JSON form of an
// argent.Item (see NewItem), or of a key that is absent.
type Item struct {
	Key      string       `json:"key"`
	Value    []byte       `json:"value,omitempty"`     // base64 in JSON; empty when Absent
	ModIndex argent.Index `json:"mod_index,omitempty"` // index of the batch that last wrote Key
	Absent   bool         `json:"absent,omitempty"`    // the key does not exist (mget only)
}

// NewItem returns the JSON form of it, a key that is present.
func NewItem(it argent.Item) Item {
	return Item{Key: string(it.Key), Value: it.Value.Value, ModIndex: it.ModIndex}
}

// ScanPage is the answer to GET /v1/kv?prefix=P&after=K&limit=L. Next is the
// key to pass as after for the next page, empty on the last page. Shape:
// {"index":S,"items":[{"key":"k","value":"aGk=","mod_index":7}],"next":"k2"}.
type ScanPage struct {
	Index argent.Index `json:"index"`
	Items []Item       `json:"items"`
	Next  string       `json:"next,omitempty"`
}

// TxnRequest is the body of POST /v1/txn: one atomic batch. Shape:
// {"conditions":[{"key":"k","mod_index":7}],"ops":[{"op":"put","key":"k","value":"aGk="},{"op":"delete","key":"j"},{"op":"delete_prefix","key":"tmp/"}]}.
type TxnRequest struct {
	Conditions []TxnCondition `json:"conditions,omitempty"`
	Ops        []TxnOp        `json:"ops"`
}

// TxnCondition guards a txn: Key's mod index must equal ModIndex; 0 means
// the key must be absent. mod_index is always written, 0 included.
type TxnCondition struct {
	Key      string       `json:"key"`
	ModIndex argent.Index `json:"mod_index"`
}

// TxnOp is one operation of a txn or of a watch line. Op is "put", "delete"
// or "delete_prefix" (argent.OpType.String); Value is only for "put".
type TxnOp struct {
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value []byte `json:"value,omitempty"`
}

// WatchLine is one line of the newline-delimited JSON of GET /v1/watch: a
// batch, {"index":N,"ops":[{"op":"put","key":"k","value":"aGk="}]}, or a
// progress marker, {"index":N,"progress":true}, saying that every batch up to
// N that matches the prefix has been sent. A server that must end a stream for
// a reason the client should know (its history no longer covers the stream,
// say) may send a last line {"index":N,"error":{"code":"...","message":"..."}}.
type WatchLine struct {
	Index    argent.Index `json:"index"`
	Progress bool         `json:"progress,omitempty"`
	Ops      []TxnOp      `json:"ops,omitempty"`
	Error    *ErrorDetail `json:"error,omitempty"`
}

// StatusResponse is the answer to GET /v1/status. Shape:
// {"role":"replica","node_id":"...","dataset_id":"...","applied_index":N,"root_index":N,"lag_seconds":0.004,"upstream":"...","children":[...]}.
type StatusResponse struct {
	Role         string       `json:"role"`          // "root", "replica", "proxy" or "relay"
	NodeID       string       `json:"node_id"`       // the node's ID
	DatasetID    string       `json:"dataset_id"`    // argent.DatasetID.String(); empty if not known yet
	AppliedIndex argent.Index `json:"applied_index"` // the highest index the node serves
	RootIndex    argent.Index `json:"root_index"`    // the root's latest index, as last heard
	LagSeconds   float64      `json:"lag_seconds"`   // how far the node's state is behind the root's
	Upstream     string       `json:"upstream"`      // the address the node pulls from; empty on the root
	DC           string       `json:"dc,omitempty"`  // the node's data center (--dc)
	// DCPeers are, on a proxy of a data center, the proxies sharing its
	// L2 shards, itself included.
	DCPeers  []string      `json:"dc_peers,omitempty"`
	Children []StatusChild `json:"children"`        // the nodes pulling from this one
	Group    *GroupStatus  `json:"group,omitempty"` // a root group member's view of the group
	// DiskFull is true while a root refuses writes, or a replica applies no
	// entries, because its disk has less free space than --min-free-disk
	// (at a root group member: while any member's disk alarm is raised,
	// see GroupStatus.DiskAlarms), or while a proxy admits no new keys below
	// its --free-disk-floor.
	DiskFull bool `json:"disk_full,omitempty"`
}

// GroupStatus is a root group member's view of its Raft group. Commit and
// applied are Raft indexes, not argent indexes.
type GroupStatus struct {
	ID      uint64        `json:"id"`     // this member's Raft ID
	Leader  uint64        `json:"leader"` // 0 while no leader is known
	Term    uint64        `json:"term"`
	State   string        `json:"state"` // leader, follower, candidate, pre-candidate
	Commit  uint64        `json:"commit"`
	Applied uint64        `json:"applied"`
	Members []GroupMember `json:"members"`
	// DiskAlarms are the IDs of the members whose disk alarm is raised
	// (their disk has less free space than their --min-free-disk): while
	// there are any, every member refuses writes with 507
	// insufficient_storage. Absent when none is.
	DiskAlarms []uint64 `json:"disk_alarms,omitempty"`
}

// MemberRequest is the body of POST /v1/members: the new member's Raft ID
// and listen address.
type MemberRequest struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

// GroupMember is one member of a root group in GroupStatus.
type GroupMember struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

// StatusChild is one child of a node in StatusResponse. Raw keeps the child's
// whole JSON object (also fields this version does not know); it is filled by
// decoding and ignored by encoding.
type StatusChild struct {
	Addr         string       `json:"addr"`
	NodeID       string       `json:"node_id"`
	Role         string       `json:"role,omitempty"`
	DC           string       `json:"dc,omitempty"`
	AppliedIndex argent.Index `json:"applied_index"`
	LagSeconds   float64      `json:"lag_seconds"`

	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes a child object and keeps it in Raw. A bare string is
// taken as the child's address.
func (c *StatusChild) UnmarshalJSON(b []byte) error {
	type plain StatusChild
	var p plain
	var addr string
	if err := json.Unmarshal(b, &addr); err == nil {
		p.Addr = addr
	} else if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*c = StatusChild(p)
	c.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// ErrorBody is the body of every non-2xx answer. Shape:
// {"error":{"code":"not_found","message":"..."}}; a failed condition adds the
// key and the mod indexes: {"error":{"code":"condition_failed","message":"...","key":"k","want":7,"got":9}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Key, Want and Got are set only for
// CodeConditionFailed; Want and Got are pointers so that 0 (absent) is still
// written.
type ErrorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Key     string        `json:"key,omitempty"`
	Want    *argent.Index `json:"want,omitempty"`
	Got     *argent.Index `json:"got,omitempty"`
}

// CheckJSONKey returns an argent.ErrInvalid error when key cannot travel as
// a JSON string (it is not valid UTF-8).
func CheckJSONKey(key []byte) error {
	if !utf8.Valid(key) {
		return fmt.Errorf("%w: key %q is not valid UTF-8, which the JSON API needs", argent.ErrInvalid, key)
	}
	return nil
}

// NewTxnOp returns the JSON form of op. It does not check the key; see
// NewTxnRequest.
func NewTxnOp(op argent.Op) TxnOp {
	return TxnOp{Op: op.Type.String(), Key: string(op.Key), Value: op.Value}
}

// ToOp returns the operation o stands for, or an argent.ErrInvalid error for
// an unknown op name. Value is kept only for "put".
func (o TxnOp) ToOp() (argent.Op, error) {
	t, err := argent.ParseOpType(o.Op)
	if err != nil {
		return argent.Op{}, err
	}
	op := argent.Op{Type: t, Key: []byte(o.Key)}
	if t == argent.OpPut {
		op.Value = o.Value
	} else if len(o.Value) > 0 {
		return argent.Op{}, fmt.Errorf("%w: %s op on %q carries a value", argent.ErrInvalid, o.Op, o.Key)
	}
	return op, nil
}

// NewTxnRequest returns the JSON form of b. It returns an argent.ErrInvalid
// error when a key is not valid UTF-8. It does not check b against the
// limits; the server does.
func NewTxnRequest(b argent.Batch) (TxnRequest, error) {
	r := TxnRequest{Ops: make([]TxnOp, 0, len(b.Ops))}
	if len(b.Conditions) > 0 {
		r.Conditions = make([]TxnCondition, 0, len(b.Conditions))
	}
	for _, c := range b.Conditions {
		if err := CheckJSONKey(c.Key); err != nil {
			return TxnRequest{}, err
		}
		r.Conditions = append(r.Conditions, TxnCondition{Key: string(c.Key), ModIndex: c.ModIndex})
	}
	for _, op := range b.Ops {
		if err := CheckJSONKey(op.Key); err != nil {
			return TxnRequest{}, err
		}
		r.Ops = append(r.Ops, NewTxnOp(op))
	}
	return r, nil
}

// Batch returns the batch r stands for, or an argent.ErrInvalid error for an
// unknown op name or a value on a delete. It does not check the limits; use
// argent.Limits.CheckBatch.
func (r *TxnRequest) Batch() (argent.Batch, error) {
	var b argent.Batch
	if len(r.Conditions) > 0 {
		b.Conditions = make([]argent.Condition, 0, len(r.Conditions))
	}
	for _, c := range r.Conditions {
		b.Conditions = append(b.Conditions, argent.Condition{Key: []byte(c.Key), ModIndex: c.ModIndex})
	}
	b.Ops = make([]argent.Op, 0, len(r.Ops))
	for i, o := range r.Ops {
		op, err := o.ToOp()
		if err != nil {
			return argent.Batch{}, fmt.Errorf("op %d: %w", i, err)
		}
		b.Ops = append(b.Ops, op)
	}
	return b, nil
}

// TraceResponse is GET /v1/trace/{key}'s answer: the path of one read of
// key at index Index through the node's tiers, in the order they were
// asked, and the answer (Tier answered; Value base64 unless Absent).
type TraceResponse struct {
	Key      string       `json:"key"`
	Node     string       `json:"node"`
	Index    argent.Index `json:"index"`
	Tier     string       `json:"tier"`
	Absent   bool         `json:"absent,omitempty"`
	Value    []byte       `json:"value,omitempty"`
	ModIndex argent.Index `json:"mod_index,omitempty"`
	Steps    []TraceStep  `json:"steps"`
}

// TraceStep is one tier asked during a traced read. Answer is one of:
// "hit" (a value), "absent" (the key does not exist), "miss" (not held
// here), "skip" (not asked, Detail says why), "newer" (an L2 owner is past
// the read's index and the key changed since), "unproven" (an answer as of
// an older index the window could not prove), "error". Index is the index
// the answer was as of; Micros the step's latency.
type TraceStep struct {
	Tier   string       `json:"tier"`
	Node   string       `json:"node,omitempty"`
	Answer string       `json:"answer"`
	Index  argent.Index `json:"index,omitempty"`
	Micros float64      `json:"micros"`
	Detail string       `json:"detail,omitempty"`
}
