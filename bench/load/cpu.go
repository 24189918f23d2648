package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPU accounting from /proc (Linux), so that a result says where the
// machine's CPU went during the run: this load generator, the server
// processes named by -pids, and everything else. On a shared machine the
// last one explains a bad run.

// clockTick is USER_HZ, the unit of /proc CPU times; 100 on every Linux
// architecture Go supports.
const clockTick = 100

// cpuSample is the CPU used so far, in seconds.
type cpuSample struct {
	machine float64   // busy time of every CPU (not idle, not iowait)
	pids    []float64 // user+sys of each -pids process
	ok      bool      // /proc was readable
}

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

func sampleCPU(pids []int) cpuSample {
	var s cpuSample
	m, err := machineBusy()
	if err != nil {
		return s
	}
	s.machine, s.ok = m, true
	for _, p := range pids {
		t, err := procCPU(p)
		if err != nil {
			s.ok = false
		}
		s.pids = append(s.pids, t)
	}
	return s
}

// machineBusy returns the busy CPU-seconds of the machine from /proc/stat.
func machineBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are in user already
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return float64(busy) / clockTick, nil
}

// procCPU returns user+sys CPU-seconds of process pid (all its threads).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it do not.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")": state(3) ... utime(14) stime(15), so f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return float64(u+s) / clockTick, nil
}
