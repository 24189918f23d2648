package client_test

import (
	"encoding/json"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/apiwire"
)

// The client re-exports the API's wire types from internal/apiwire. These
// assignments stop compiling if a re-export stops being the same type, and
// the interface checks if a type loses a method users call.
var (
	_ client.IndexResponse  = apiwire.IndexResponse{}
	_ client.MGetRequest    = apiwire.MGetRequest{}
	_ client.MGetResponse   = apiwire.MGetResponse{}
	_ client.Item           = apiwire.Item{}
	_ client.ScanPage       = apiwire.ScanPage{}
	_ client.TxnRequest     = apiwire.TxnRequest{}
	_ client.TxnCondition   = apiwire.TxnCondition{}
	_ client.TxnOp          = apiwire.TxnOp{}
	_ client.WatchLine      = apiwire.WatchLine{}
	_ client.StatusResponse = apiwire.StatusResponse{}
	_ client.Status         = apiwire.StatusResponse{}
	_ client.StatusChild    = apiwire.StatusChild{}
	_ client.ErrorBody      = apiwire.ErrorBody{}
	_ client.ErrorDetail    = apiwire.ErrorDetail{}
	_ client.Event          = apiwire.Event{}
	_ *client.Error         = (*apiwire.Error)(nil)

	_ error                                      = (*client.Error)(nil)
	_ interface{ Unwrap() error }                = (*client.Error)(nil)
	_ json.Unmarshaler                           = (*client.StatusChild)(nil)
	_ interface{ Event() (client.Event, error) } = (*client.WatchLine)(nil)
	_ interface{ ToOp() (argent.Op, error) }     = client.TxnOp{}
	_ interface{ Batch() (argent.Batch, error) } = (*client.TxnRequest)(nil)
)

func TestReexports_Codes(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{client.CodeNotFound, "not_found"},
		{client.CodeTimeout, "timeout"},
		{client.CodeInvalid, "invalid"},
		{client.CodeTooLarge, "too_large"},
		{client.CodeConditionFailed, "condition_failed"},
		{client.CodeCompacted, "compacted"},
		{client.CodeUnavailable, "unavailable"},
		{client.CodeDatasetMismatch, "dataset_mismatch"},
		{client.CodeInternal, "internal"},
		{client.CodeNotReady, "not_ready"},
		{client.CodeRootUnreachable, "root_unreachable"},
		{client.HeaderIndex, "Argent-Index"},
		{client.HeaderModIndex, "Argent-Mod-Index"},
		{client.HeaderTier, "Argent-Tier"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if got := client.HTTPStatus(client.CodeCompacted); got != 410 {
		t.Errorf("HTTPStatus(compacted) = %d, want 410", got)
	}
	if got := client.Sentinel(client.CodeNotFound); got != argent.ErrNotFound {
		t.Errorf("Sentinel(not_found) = %v", got)
	}
}
