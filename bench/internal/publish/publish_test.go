package publish

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport_Write writes the results and replaces the docs' section,
// leaving the rest of the docs alone; a docs file that is missing is made.
func TestReport_Write(t *testing.T) {
	dir := t.TempDir()
	docs := filepath.Join(dir, "bench.md")
	if err := os.WriteFile(docs, []byte("# B\n<!-- x:begin -->\nold\n<!-- x:end -->\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	md := "<!-- x:begin -->\nnew\n<!-- x:end -->\n"
	var out strings.Builder
	r := Report{Name: "x", Markdown: md, Results: map[string]int{"n": 1}, ResultsPath: filepath.Join(dir, "results", "x.json"),
		DocsPath: docs, Begin: "<!-- x:begin -->", End: "<!-- x:end -->"}
	if code := r.Write(&out, io.Discard); code != 0 || out.String() != md {
		t.Fatalf("Write = %d, stdout %q", code, out.String())
	}
	if b, err := os.ReadFile(r.ResultsPath); err != nil || string(b) != "{\n  \"n\": 1\n}\n" {
		t.Errorf("results %q, %v", b, err)
	}
	if b, err := os.ReadFile(docs); err != nil || string(b) != "# B\n"+md+"after\n" {
		t.Errorf("docs %q, %v", b, err)
	}
	r.DocsPath = filepath.Join(dir, "new.md")
	if code := r.Write(io.Discard, io.Discard); code != 0 {
		t.Fatalf("Write to a missing docs file = %d", code)
	}
	if b, err := os.ReadFile(r.DocsPath); err != nil || string(b) != md {
		t.Errorf("new docs %q, %v", b, err)
	}
	r.ResultsPath = filepath.Join(docs, "under-a-file.json")
	if code := r.Write(io.Discard, io.Discard); code != 1 {
		t.Errorf("Write with an unwritable results path = %d, want 1", code)
	}
}
