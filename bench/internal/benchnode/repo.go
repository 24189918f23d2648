package benchnode

// The repository root, found from the working directory, so that the
// commands under bench/ (a module of its own) build ./cmd/argent and write
// docs/ and bench/results/ of the repository wherever they are started.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// rootModule is the module path of the repository root's go.mod.
const rootModule = "github.com/argent-kv/argent"

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory whose go.mod declares module
// github.com/argent-kv/argent. The benchmark commands run from bench/ (go
// run ./compare) or, built, from anywhere inside the repository.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("benchnode: repository root: %w", err)
	}
	return repoRootFrom(wd)
}

// repoRootFrom is RepoRoot from the directory dir.
func repoRootFrom(dir string) (string, error) {
	for d := dir; ; {
		if declaresRootModule(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("benchnode: no go.mod of module " + rootModule + " at or above " + dir + ": run from inside the argent repository")
		}
		d = parent
	}
}

// declaresRootModule reports whether the go.mod file at path declares
// rootModule.
func declaresRootModule(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == rootModule
		}
	}
	return false
}

// RepoPath returns p, a slash-separated path relative to the repository
// root, as a path relative to the working directory: "docs/benchmarks.md"
// becomes "../docs/benchmarks.md" in bench/. It serves as the default of a
// flag naming a file of the repository, so that the default shown by -h is
// the file used. Outside the repository it returns p as given.
func RepoPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	root, err := repoRootFrom(wd)
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(wd, filepath.Join(root, filepath.FromSlash(p)))
	if err != nil {
		return p
	}
	return rel
}
