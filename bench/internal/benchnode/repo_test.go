package benchnode

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	// go test runs in the package's directory, bench/internal/benchnode.
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "argent")); err != nil {
		t.Errorf("RepoRoot = %s, which has no cmd/argent: %v", root, err)
	}
	if got, want := RepoPath("docs/benchmarks.md"), filepath.FromSlash("../../../docs/benchmarks.md"); got != want {
		t.Errorf("RepoPath(docs/benchmarks.md) = %q, want %q", got, want)
	}
}

func TestRepoRoot_Outside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if root, err := repoRootFrom(dir); err == nil {
		t.Errorf("repoRootFrom(%s) = %s, want an error", dir, root)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("// c\nmodule \"github.com/argent-kv/argent\"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "bench", "compare")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if root, err := repoRootFrom(sub); err != nil || root != dir {
		t.Errorf("repoRootFrom(%s) = %s, %v, want %s", sub, root, err, dir)
	}
}
