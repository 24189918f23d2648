package main

import (
	"os"
	"testing"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/mdsection"
)

// docs/benchmarks.md keeps this program's markers, so that a run rewrites
// its section in place.
func TestDocs_Markers(t *testing.T) {
	doc, err := os.ReadFile(benchnode.RepoPath("docs/benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	if err := mdsection.Check(string(doc), markBegin, markEnd); err != nil {
		t.Errorf("docs/benchmarks.md: %v", err)
	}
}
