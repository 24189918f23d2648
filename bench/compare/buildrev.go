package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildAtRev builds ./cmd/argent as of the git revision rev into dir and
// returns the binary and rev's short commit hash. It checks rev out into a
// temporary git worktree under dir, so that uncommitted changes in the
// working tree (someone else's work in progress, say) neither end up in the
// measured binary nor can break its build, and removes the worktree after.
func buildAtRev(ctx context.Context, rev, dir string) (bin, commit string, err error) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("git rev-parse %s: %w", rev, err)
	}
	commit = strings.TrimSpace(string(out))
	wt := filepath.Join(dir, "src-"+commit)
	if out, err := exec.CommandContext(ctx, "git", "worktree", "add", "--detach", wt, commit).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("git worktree add %s: %w: %s", commit, err, out)
	}
	defer func() {
		if out, rerr := exec.Command("git", "worktree", "remove", "--force", wt).CombinedOutput(); rerr != nil {
			fmt.Fprintf(os.Stderr, "compare: git worktree remove %s: %v: %s\n", wt, rerr, out)
		}
	}()
	bin = filepath.Join(dir, "argent")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/argent")
	cmd.Dir = wt
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/argent at %s: %w", commit, err)
	}
	return bin, commit, nil
}
