package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/argent-kv/argent/bench/internal/benchnode"
)

// machine is what the results were measured on.
type machine struct {
	NProc          int    `json:"nproc"`
	CPUModel       string `json:"cpu_model"`
	Kernel         string `json:"kernel"`
	Go             string `json:"go"`
	Etcd           string `json:"etcd"`
	RedisServer    string `json:"redis_server"`
	RedisBenchmark string `json:"redis_benchmark"`
	Tree           string `json:"tree"` // git commit of the argent tree, "+dirty" with uncommitted changes
	LoadStart      string `json:"loadavg_start"`
	LoadEnd        string `json:"loadavg_end,omitempty"`
}

// describeMachine collects the machine's facts and the versions of the
// programs; what it cannot find it leaves as "?".
func describeMachine(ctx context.Context, b bins) machine {
	m := machine{
		NProc:          runtime.NumCPU(),
		CPUModel:       cpuModel(),
		Kernel:         firstLine(readFile("/proc/sys/kernel/osrelease")),
		Go:             runtime.Version(),
		Etcd:           firstLine(output(ctx, b.etcd, "--version")),
		RedisServer:    firstLine(output(ctx, b.redisServer, "--version")),
		RedisBenchmark: firstLine(output(ctx, b.redisBenchmark, "--version")),
		LoadStart:      benchnode.Loadavg(),
	}
	rev := firstLine(output(ctx, "git", "rev-parse", "--short", "HEAD"))
	if rev != "?" && strings.TrimSpace(output(ctx, "git", "status", "--porcelain", "--untracked-files=no")) != "" {
		rev += "+dirty"
	}
	m.Tree = rev
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	return cpuModelOf(readFile("/proc/cpuinfo"))
}

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

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// output runs a program for at most 10 s and returns its output, or "" if
// it failed.
func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(string(bytes.TrimSpace([]byte(s))), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "?"
	}
	return line
}
