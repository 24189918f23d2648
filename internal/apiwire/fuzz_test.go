package apiwire_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// FuzzWatchLine decodes a watch line as a client does: a line that gives
// an event re-encodes (NewWatchLine) to a line giving the same event, and
// a line with an error gives an *apiwire.Error with that code.
func FuzzWatchLine(f *testing.F) {
	for _, s := range []string{
		`{"index":7,"ops":[{"op":"put","key":"k","value":"aGk="},{"op":"delete","key":"d"}]}`,
		`{"index":8,"progress":true}`,
		`{"index":9,"ops":[{"op":"delete_prefix","key":"p/"}]}`,
		`{"index":9,"error":{"code":"too_old","message":"gone"}}`,
		`{"index":1,"ops":[{"op":"delete","key":"d","value":"aGk="}]}`,
		`{"index":1,"ops":[{"op":"rename","key":"d"}]}`,
		`{"index":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l apiwire.WatchLine
		if json.Unmarshal(b, &l) != nil {
			return
		}
		ev, err := l.Event()
		if err != nil {
			var ae *apiwire.Error
			if l.Error != nil {
				// An empty code is guessed from the status (NewError).
				want := l.Error.Code
				if want == "" {
					want = apiwire.CodeInternal
				}
				if !errors.As(err, &ae) || ae.Code != want {
					t.Fatalf("error line %s gave %v", b, err)
				}
			} else if !errors.Is(err, argent.ErrInvalid) {
				t.Fatalf("bad op in %s gave %v, not ErrInvalid", b, err)
			}
			return
		}
		if ev.Index != l.Index || ev.Progress != l.Progress || len(ev.Ops) != len(l.Ops) {
			t.Fatalf("event %+v of line %+v", ev, l)
		}
		back := apiwire.NewWatchLine(ev.Index, ev.Ops)
		back.Progress = ev.Progress
		enc, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		var l2 apiwire.WatchLine
		if err := json.Unmarshal(enc, &l2); err != nil {
			t.Fatalf("%s does not decode: %v", enc, err)
		}
		ev2, err := l2.Event()
		if err != nil || !sameEvent(ev, ev2) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", ev, enc, ev2, err)
		}
	})
}

func sameEvent(a, b apiwire.Event) bool {
	if a.Index != b.Index || a.Progress != b.Progress || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := a.Ops[i], b.Ops[i]
		// JSON keys are strings: invalid UTF-8 came in as U+FFFD already.
		if x.Type != y.Type || string(x.Key) != string(y.Key) || string(x.Value) != string(y.Value) {
			return false
		}
	}
	return true
}

// FuzzStatusChild decodes a status answer's child, an object or a bare
// address: it keeps the raw bytes and decodes again to the same child.
func FuzzStatusChild(f *testing.F) {
	for _, s := range []string{
		`"127.0.0.1:7401"`,
		`{"addr":"127.0.0.1:7401","node_id":"n1","role":"replica","applied_index":5,"lag_seconds":0.01}`,
		`{"addr":1}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c apiwire.StatusChild
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		if !json.Valid(c.Raw) {
			t.Fatalf("kept %q, not JSON", c.Raw)
		}
		var c2 apiwire.StatusChild
		if err := json.Unmarshal(c.Raw, &c2); err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("raw %s decodes to %+v, first %+v: %v", c.Raw, c2, c, err)
		}
	})
}
