// Package apiwire holds the wire form of argent's client HTTP API (docs/CONTRACT.md
// section 4): the JSON bodies of requests and answers, the headers of a
// read, and the table of error codes with the sentinel error and HTTP
// status each stands for.
//
// It is the one contract between the servers that speak the API
// (internal/api, and internal/lookup, internal/node, internal/proxy and
// internal/pull where they read or write its shapes) and the public client,
// which re-exports these types under its own name with type aliases. Keeping
// them here lets a server speak the API without importing the client, and
// keeps the client free to grow without the servers following.
//
// Values are []byte fields, which encoding/json writes as standard base64.
// Keys are JSON strings and so must be valid UTF-8: a key with other bytes
// cannot be sent in a JSON body (CheckJSONKey refuses it with
// argent.ErrInvalid), and a server writing one into a JSON answer would turn
// the bad bytes into U+FFFD. Keys in a URL (a key's path, and the prefix and
// after of a scan or watch) are percent-encoded and may hold any bytes.
//
//	status, body := apiwire.NewErrorBody(err)      // a server's error answer
//	code := apiwire.CodeOf(err)                    // its code alone
//	e := apiwire.NewError(resp.StatusCode, detail) // a client's error from it
//	line := apiwire.NewWatchLine(index, ops)       // one line of a watch
package apiwire
