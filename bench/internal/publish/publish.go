// Package publish puts a benchmark's report where its readers look: the
// markdown on stdout, the results as JSON, and the generated section of
// the docs.
package publish

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/argent-kv/argent/bench/internal/mdsection"
)

// Report is one run's report.
type Report struct {
	Name     string // the command, which prefixes its messages
	Markdown string
	// Results is written as JSON to ResultsPath, unless it is empty.
	Results     any
	ResultsPath string
	// DocsPath's section between Begin and End is replaced by Markdown,
	// unless DocsPath is empty.
	DocsPath, Begin, End string
}

// Write prints the markdown on stdout, writes the results and the docs,
// says so on stderr, and returns the command's exit code.
func (r Report) Write(stdout, stderr io.Writer) int {
	fmt.Fprint(stdout, r.Markdown)
	if r.ResultsPath != "" {
		if err := WriteJSON(r.ResultsPath, r.Results); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", r.Name, err)
			return 1
		}
		fmt.Fprintf(stderr, "%s: wrote %s\n", r.Name, r.ResultsPath)
	}
	if r.DocsPath != "" {
		if err := mdsection.UpdateFile(r.DocsPath, r.Begin, r.End, r.Markdown); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", r.Name, err)
			return 1
		}
		fmt.Fprintf(stderr, "%s: updated %s\n", r.Name, r.DocsPath)
	}
	return 0
}

// WriteJSON writes v, indented, to path, making its directory.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
