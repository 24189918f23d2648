package api

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/argent-kv/argent/internal/apiwire"
)

// jsonFields returns the JSON field names of a struct type.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TestTxnRequest_MirrorsClient checks that the server's strict txn types
// accept exactly the JSON fields of the client's.
func TestTxnRequest_MirrorsClient(t *testing.T) {
	for _, tt := range []struct {
		name         string
		server, wire any
	}{
		{"TxnRequest", txnRequest{}, apiwire.TxnRequest{}},
		{"TxnCondition", txnCondition{}, apiwire.TxnCondition{}},
		{"TxnOp", txnOp{}, apiwire.TxnOp{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, want := jsonFields(reflect.TypeOf(tt.server)), jsonFields(reflect.TypeOf(tt.wire))
			if !slices.Equal(got, want) {
				t.Errorf("server fields %v, client fields %v", got, want)
			}
		})
	}
}
