package main

import (
	"testing"

	"github.com/argent-kv/argent/bench/internal/docstest"
)

// docs/benchmarks.md keeps this program's markers, so that a run rewrites
// its section in place.
func TestDocs_Markers(t *testing.T) { docstest.Markers(t, markBegin, markEnd) }
