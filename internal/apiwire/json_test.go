package apiwire_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

func TestTxnRequest_Batch(t *testing.T) {
	b := argent.Batch{
		Conditions: []argent.Condition{{Key: []byte("k"), ModIndex: 7}, {Key: []byte("new"), ModIndex: 0}},
		Ops: []argent.Op{
			{Type: argent.OpPut, Key: []byte("k"), Value: []byte("hi")},
			{Type: argent.OpDelete, Key: []byte("j")},
			{Type: argent.OpDeletePrefix, Key: []byte("tmp/")},
		},
	}
	req, err := apiwire.NewTxnRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back apiwire.TxnRequest
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	got, err := back.Batch()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("round trip = %+v, want %+v", got, b)
	}
}

func TestTxnRequest_Invalid(t *testing.T) {
	for _, tt := range []struct {
		name string
		json string
	}{
		{"UnknownOp", `{"ops":[{"op":"merge","key":"k"}]}`},
		{"ValueOnDelete", `{"ops":[{"op":"delete","key":"k","value":"aGk="}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r apiwire.TxnRequest
			if err := json.Unmarshal([]byte(tt.json), &r); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Batch(); !errors.Is(err, argent.ErrInvalid) {
				t.Errorf("Batch() = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := apiwire.NewTxnRequest(argent.Batch{Conditions: []argent.Condition{{Key: []byte{0xff}}}}); !errors.Is(err, argent.ErrInvalid) {
		t.Errorf("NewTxnRequest(non-UTF-8 condition key) = %v, want ErrInvalid", err)
	}
}

// TestWire_Shapes checks the JSON of the wire types against the examples of
// docs/CONTRACT.md section 4.
func TestWire_Shapes(t *testing.T) {
	mod := argent.Index(9)
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"Index", apiwire.IndexResponse{Index: 12}, `{"index":12}`},
		{"MGetRequest", apiwire.MGetRequest{Keys: []string{"k", "j"}}, `{"keys":["k","j"]}`},
		{"MGetResponse", apiwire.MGetResponse{Index: 8, Items: []apiwire.Item{{Key: "k", Value: []byte("hi"), ModIndex: 7}, {Key: "j", Absent: true}}},
			`{"index":8,"items":[{"key":"k","value":"aGk=","mod_index":7},{"key":"j","absent":true}]}`},
		{"ScanPage", apiwire.ScanPage{Index: 8, Items: []apiwire.Item{{Key: "k", Value: []byte("hi"), ModIndex: 7}}, Next: "k2"},
			`{"index":8,"items":[{"key":"k","value":"aGk=","mod_index":7}],"next":"k2"}`},
		{"NewItem", apiwire.NewItem(argent.Item{Key: []byte("k"), Value: argent.Value{Value: []byte("hi"), ModIndex: 7}}),
			`{"key":"k","value":"aGk=","mod_index":7}`},
		{"ScanLastPage", apiwire.ScanPage{Index: 8, Items: []apiwire.Item{}}, `{"index":8,"items":[]}`},
		{"WatchBatch", apiwire.NewWatchLine(5, []argent.Op{{Type: argent.OpPut, Key: []byte("k"), Value: []byte("hi")}}),
			`{"index":5,"ops":[{"op":"put","key":"k","value":"aGk="}]}`},
		{"WatchProgress", apiwire.NewProgressLine(6), `{"index":6,"progress":true}`},
		{"Error", apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: "not_found", Message: "m"}}, `{"error":{"code":"not_found","message":"m"}}`},
		{"ConditionError", apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: "condition_failed", Message: "m", Key: "k", Want: new(argent.Index), Got: &mod}},
			`{"error":{"code":"condition_failed","message":"m","key":"k","want":0,"got":9}}`},
		{"Status", apiwire.StatusResponse{Role: "root", NodeID: "1", AppliedIndex: 3, RootIndex: 3, Children: []apiwire.StatusChild{{Addr: "a", NodeID: "2", AppliedIndex: 2, LagSeconds: 0.1, Raw: json.RawMessage(`"ignored"`)}}},
			`{"role":"root","node_id":"1","dataset_id":"","applied_index":3,"root_index":3,"lag_seconds":0,"upstream":"","children":[{"addr":"a","node_id":"2","applied_index":2,"lag_seconds":0.1}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("JSON = %s\nwant   %s", b, tt.want)
			}
		})
	}
}

func TestWatchLine_Event(t *testing.T) {
	l := apiwire.NewWatchLine(4, []argent.Op{{Type: argent.OpDeletePrefix, Key: []byte("p/")}})
	ev, err := l.Event()
	want := apiwire.Event{Index: 4, Ops: []argent.Op{{Type: argent.OpDeletePrefix, Key: []byte("p/")}}}
	if err != nil || !reflect.DeepEqual(ev, want) {
		t.Errorf("Event() = %+v, %v; want %+v", ev, err, want)
	}
}
