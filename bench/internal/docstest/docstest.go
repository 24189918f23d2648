// Package docstest holds the check that the tests of every benchmark
// program that writes results into docs/benchmarks.md make: the file still
// has the program's pair of markers, once each and in order, so that the
// next run rewrites its section in place instead of appending a second one.
//
//	func TestDocs_Markers(t *testing.T) { docstest.Markers(t, markBegin, markEnd) }
package docstest

import (
	"fmt"
	"os"
	"testing"

	"github.com/argent-kv/argent/bench/internal/benchnode"
	"github.com/argent-kv/argent/bench/internal/mdsection"
)

// Doc is the file the benchmark programs write their sections into,
// relative to the repository root.
const Doc = "docs/benchmarks.md"

// Markers fails t unless the repository's docs/benchmarks.md holds begin
// and end once each, begin first.
func Markers(t testing.TB, begin, end string) {
	t.Helper()
	if err := checkFile(benchnode.RepoPath(Doc), begin, end); err != nil {
		t.Error(err)
	}
}

// checkFile is Markers' check of the markdown file at path.
func checkFile(path, begin, end string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("markers of %s: %w", Doc, err)
	}
	if err := mdsection.Check(string(doc), begin, end); err != nil {
		return fmt.Errorf("%s: %w", Doc, err)
	}
	return nil
}
