package benchnode

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU accounting from /proc (Linux): where the machine's CPU went during a
// measured interval. The benchmark itself, each node process, and
// everything else; on a shared machine the last one explains a bad run.

// clockTick is USER_HZ, the unit of /proc CPU times; 100 on every Linux
// architecture Go supports.
const clockTick = 100

// CPUSample is the CPU used so far, in seconds, as SampleCPU read it.
type CPUSample struct {
	At      time.Time // when it was taken
	Self    float64   // this process, from getrusage
	Machine float64   // busy time of every CPU (not idle, not iowait)
	PIDs    []float64 // user+sys of each process, in the order asked for
	OK      bool      // /proc was readable
}

// SampleCPU reads the CPU used so far by this process, by the machine, and
// by each of pids. If /proc/stat cannot be read, OK is false and PIDs is
// empty; if a process's /proc/PID/stat cannot be read, OK is false and its
// entry is 0.
func SampleCPU(pids []int) CPUSample {
	s := CPUSample{At: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.Self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	m, err := MachineBusy()
	if err != nil {
		return s
	}
	s.Machine, s.OK = m, true
	for _, p := range pids {
		t, err := ProcCPU(p)
		if err != nil {
			s.OK = false
		}
		s.PIDs = append(s.PIDs, t)
	}
	return s
}

// CPUUse is the CPU used between two samples, in cores (CPU-seconds per
// second of wall time).
type CPUUse struct {
	Wall    float64   // seconds
	Self    float64   // cores used by this process
	PIDs    []float64 // cores used by each process
	Machine float64   // cores busy on the whole machine
	OK      bool      // both samples were complete
}

// CPUBetween returns the CPU used from sample a to the later sample b, which
// must be of the same pids. It is the zero CPUUse if b is not after a.
func CPUBetween(a, b CPUSample) CPUUse {
	u := CPUUse{Wall: b.At.Sub(a.At).Seconds(), OK: a.OK && b.OK}
	if u.Wall <= 0 {
		return CPUUse{}
	}
	u.Self = (b.Self - a.Self) / u.Wall
	u.Machine = (b.Machine - a.Machine) / u.Wall
	for i := range a.PIDs {
		if i < len(b.PIDs) {
			u.PIDs = append(u.PIDs, (b.PIDs[i]-a.PIDs[i])/u.Wall)
		}
	}
	return u
}

// Other is the cores used by processes other than this one and the sampled
// ones, never below 0.
func (u CPUUse) Other() float64 {
	o := u.Machine - u.Self
	for _, p := range u.PIDs {
		o -= p
	}
	return max(0, o)
}

// MachineBusy returns the busy CPU-seconds of the machine from /proc/stat:
// all CPUs, not idle and not iowait.
func MachineBusy() (float64, error) {
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

// ProcCPU returns user+sys CPU-seconds of process pid (all its threads)
// from /proc/PID/stat.
func ProcCPU(pid int) (float64, error) {
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
