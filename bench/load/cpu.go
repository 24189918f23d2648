package main

import (
	"fmt"
	"strconv"
	"strings"
)

// CPU accounting from /proc (Linux), by benchnode.SampleCPU, so that a
// result says where the machine's CPU went during the run: this load
// generator, the server processes named by -pids, and everything else. On a
// shared machine the last one explains a bad run.

// parsePIDs parses the -pids flag: comma-separated process IDs.
func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("-pids: %q is not a process ID", f)
		}
		out = append(out, p)
	}
	return out, nil
}
