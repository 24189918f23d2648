package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// ExportCmd writes every key under a prefix at one index.
type ExportCmd struct {
	Prefix string `help:"Export only the keys with this prefix."`
	Index  uint64 `help:"Export the state at this index (within the node's history); default: the node's current state."`
	ReadFlags
	ServerFlag
}

// Run writes one JSON line per key, {"key":"k","value":"text"} or
// {"key":"k","value_b64":"..."} for a value that is not UTF-8, which
// argent load reads back. Every page is read at one index (scan at=N), so
// the export is one state of the data set; the index goes to stderr.
func (c *ExportCmd) Run(ctx context.Context, io *stdio) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(io.out, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	var werr error
	at, err := scanPages(ctx, cl, []byte(c.Prefix), argent.Index(c.Index), c.options(), func(it client.Item) bool {
		l := loadLine{Key: it.Key}
		if utf8.Valid(it.Value) {
			s := string(it.Value)
			l.Value = &s
		} else {
			s := base64.StdEncoding.EncodeToString(it.Value)
			l.ValueB64 = &s
		}
		werr = enc.Encode(l)
		n++
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return opError("export", c.Prefix, err)
	}
	fmt.Fprintf(io.err, "exported %d keys at index %d\n", n, at)
	return nil
}
