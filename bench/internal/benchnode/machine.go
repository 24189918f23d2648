package benchnode

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// The facts a benchmark report states about the machine and the tree it
// measured. What cannot be found is "?".

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string { return cpuModelOf(readFile("/proc/cpuinfo")) }

func cpuModelOf(cpuinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// Kernel is the running kernel's release.
func Kernel() string { return FirstLine(readFile("/proc/sys/kernel/osrelease")) }

// Version is the first line of what the program prints for args (its
// --version, say), stdout and stderr together.
func Version(ctx context.Context, bin string, args ...string) string {
	return FirstLine(output(ctx, true, bin, args...))
}

// TreeRev is the short git commit of the working directory's tree, with
// "+dirty" when tracked files have uncommitted changes.
func TreeRev(ctx context.Context) string {
	rev := FirstLine(output(ctx, false, "git", "rev-parse", "--short", "HEAD"))
	if rev != "?" && strings.TrimSpace(output(ctx, false, "git", "status", "--porcelain", "--untracked-files=no")) != "" {
		rev += "+dirty"
	}
	return rev
}

// FirstLine is the first non-empty line of s, trimmed, or "?".
func FirstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "?"
	}
	return line
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// output runs a program for at most 10 s and returns its output (with
// stderr when combined), or "" if it failed.
func output(ctx context.Context, combined bool, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out []byte
	var err error
	if combined {
		out, err = cmd.CombinedOutput()
	} else {
		out, err = cmd.Output()
	}
	if err != nil {
		return ""
	}
	return string(out)
}

// Machine is what a benchmark's results were measured on, as its report
// and its JSON state it.
type Machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Tree      string `json:"tree"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"` // set by the caller when the run ends
}

// DescribeMachine returns the machine, the Go version of this program, the
// tree and the load average now, at the start of a run.
func DescribeMachine(ctx context.Context) Machine {
	return Machine{NProc: runtime.NumCPU(), CPUModel: CPUModel(), Kernel: Kernel(),
		Go: runtime.Version(), LoadStart: Loadavg(), Tree: TreeRev(ctx)}
}

// Line is the report's line about the machine.
func (m Machine) Line() string {
	return fmt.Sprintf("Machine: %d CPUs (%s), kernel %s, %s, tree %s, load average %s at the start and %s at the end.",
		m.NProc, m.CPUModel, m.Kernel, m.Go, m.Tree, m.LoadStart, m.LoadEnd)
}
