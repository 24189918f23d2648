package client

import (
	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// The JSON shapes of the HTTP API (docs/CONTRACT.md section 4), which the server
// encodes and decodes too. They are defined in one place that the server and
// this client share, and re-exported here under the client's name.
//
// Values are []byte fields, which encoding/json writes as standard base64.
// Keys are JSON strings and so must be valid UTF-8: a key with other bytes
// cannot be sent in a JSON body (the client refuses it with
// argent.ErrInvalid), and a server writing one into a JSON answer would turn
// the bad bytes into U+FFFD. Keys in a URL (Get, Put, Delete, and the prefix
// and after of Scan and Watch) are percent-encoded and may hold any bytes.
type (
	// IndexResponse is the answer to a write: PUT and DELETE
	// /v1/kv/{key} and POST /v1/txn. Shape: {"index":N}.
	IndexResponse = apiwire.IndexResponse
	// MGetRequest is the body of POST /v1/mget. Shape: {"keys":["k","j"]}.
	MGetRequest = apiwire.MGetRequest
	// MGetResponse is the answer to POST /v1/mget: every key read at one
	// index, one item per key in the order of the request. Shape:
	// {"index":S,"items":[{"key":"k","value":"aGk=","mod_index":7},{"key":"j","absent":true}]}.
	MGetResponse = apiwire.MGetResponse
	// Item is one key of an mget answer or a scan page: Key, Value (base64
	// in JSON; empty when Absent), ModIndex (index of the batch that last
	// wrote Key) and Absent (the key does not exist; mget only).
	Item = apiwire.Item
	// ScanPage is the answer to GET /v1/kv?prefix=P&after=K&limit=L. Next
	// is the key to pass as after for the next page, empty on the last
	// page. Shape:
	// {"index":S,"items":[{"key":"k","value":"aGk=","mod_index":7}],"next":"k2"}.
	ScanPage = apiwire.ScanPage
	// TxnRequest is the body of POST /v1/txn: one atomic batch. Shape:
	// {"conditions":[{"key":"k","mod_index":7}],"ops":[{"op":"put","key":"k","value":"aGk="},{"op":"delete","key":"j"},{"op":"delete_prefix","key":"tmp/"}]}.
	TxnRequest = apiwire.TxnRequest
	// TxnCondition guards a txn: Key's mod index must equal ModIndex; 0
	// means the key must be absent. mod_index is always written, 0
	// included.
	TxnCondition = apiwire.TxnCondition
	// TxnOp is one operation of a txn or of a watch line. Op is "put",
	// "delete" or "delete_prefix" (argent.OpType.String); Value is only for
	// "put".
	TxnOp = apiwire.TxnOp
	// WatchLine is one line of the newline-delimited JSON of GET
	// /v1/watch: a batch, {"index":N,"ops":[{"op":"put","key":"k","value":"aGk="}]},
	// or a progress marker, {"index":N,"progress":true}, saying that every
	// batch up to N that matches the prefix has been sent; a server that
	// must end a stream for a reason the client should know may send a last
	// line {"index":N,"error":{"code":"...","message":"..."}}.
	WatchLine = apiwire.WatchLine
	// StatusResponse is the answer to GET /v1/status. Shape:
	// {"role":"replica","node_id":"...","dataset_id":"...","applied_index":N,"root_index":N,"lag_seconds":0.004,"upstream":"...","children":[...]}.
	StatusResponse = apiwire.StatusResponse
	// Trace is the answer to GET /v1/trace/{key}: the path of one read
	// through a node's tiers, TraceStep one tier asked.
	Trace     = apiwire.TraceResponse
	TraceStep = apiwire.TraceStep

	// GroupStatus is a root group member's view of its group (the group
	// field of StatusResponse); GroupMember one member in it.
	GroupStatus = apiwire.GroupStatus
	GroupMember = apiwire.GroupMember

	// MemberRequest is the body of POST /v1/members.
	MemberRequest = apiwire.MemberRequest
	// StatusChild is one child of a node in StatusResponse. Raw keeps the
	// child's whole JSON object (also fields this version does not know);
	// it is filled by decoding and ignored by encoding.
	StatusChild = apiwire.StatusChild
	// ErrorBody is the body of every non-2xx answer. Shape:
	// {"error":{"code":"not_found","message":"..."}}; a failed condition
	// adds the key and the mod indexes:
	// {"error":{"code":"condition_failed","message":"...","key":"k","want":7,"got":9}}.
	ErrorBody = apiwire.ErrorBody
	// ErrorDetail is the inside of ErrorBody. Key, Want and Got are set
	// only for CodeConditionFailed; Want and Got are pointers so that 0
	// (absent) is still written.
	ErrorDetail = apiwire.ErrorDetail
)

// Status is the node status that Client.Status returns.
type Status = StatusResponse

// NewTxnOp returns the JSON form of op. It does not check the key; see
// NewTxnRequest.
func NewTxnOp(op argent.Op) TxnOp { return apiwire.NewTxnOp(op) }

// NewTxnRequest returns the JSON form of b. It returns an argent.ErrInvalid
// error when a key is not valid UTF-8. It does not check b against the
// limits; the server does.
func NewTxnRequest(b argent.Batch) (TxnRequest, error) { return apiwire.NewTxnRequest(b) }

// NewWatchLine returns the watch line of a batch at index with the given
// operations (those that match the watched prefix).
func NewWatchLine(index argent.Index, ops []argent.Op) WatchLine {
	return apiwire.NewWatchLine(index, ops)
}

// NewProgressLine returns the progress marker for index.
func NewProgressLine(index argent.Index) WatchLine { return apiwire.NewProgressLine(index) }
