package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/argent-kv/argent/client"
)

// TraceCmd shows the path of one read through a node's tiers.
type TraceCmd struct {
	Key  string `arg:"" help:"Key to read."`
	JSON bool   `name:"json" help:"Print the trace as the API's JSON."`
	ReadFlags
	ServerFlag
}

// Run prints each tier asked, its answer, the index it was as of and its
// latency, then the answer.
func (c *TraceCmd) Run(ctx context.Context, io *stdio) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	tr, err := cl.Trace(ctx, []byte(c.Key), c.options())
	if err != nil {
		return opError("trace", c.Key, err)
	}
	if c.JSON {
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(tr)
	}
	return printTrace(io.out, strings.TrimPrefix(cl.Addr(), "http://"), tr)
}

// printTrace writes tr as a table, one line per tier asked.
func printTrace(w io.Writer, server string, tr client.Trace) error {
	node := tr.Node
	if node == "" {
		node = server
	}
	fmt.Fprintf(w, "read of %q at index %d on %s\n", tr.Key, tr.Index, node)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range tr.Steps {
		asOf := ""
		if s.Index != 0 {
			asOf = fmt.Sprintf("as of %d", s.Index)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%.0fµs\t%s\n", s.Tier, s.Answer, s.Node, asOf, s.Micros, s.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case tr.Tier == "":
		_, err := fmt.Fprintln(w, "answer: none (no tier could answer)")
		return err
	case tr.Absent:
		_, err := fmt.Fprintf(w, "answer: absent, from %s\n", tr.Tier)
		return err
	}
	_, err := fmt.Fprintf(w, "answer: %d bytes, mod index %d, from %s\n", len(tr.Value), tr.ModIndex, tr.Tier)
	return err
}
