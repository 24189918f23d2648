package benchnode

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ParseMetrics keeps the samples without labels: a histogram's sum and
// count, but not its buckets, nor labelled counters.
func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP x y
argent_log_first_index 470
argent_upstream_reconnects_total{reason="eof"} 2
go_goroutines 12
go_memstats_heap_sys_bytes 1.2e+07
# TYPE argent_root_commit_seconds histogram
argent_root_commit_seconds_bucket{le="0.001"} 3
argent_root_commit_seconds_bucket{le="+Inf"} 4
argent_root_commit_seconds_sum 0.25
argent_root_commit_seconds_count 4
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"argent_log_first_index": 470, "go_goroutines": 12, "go_memstats_heap_sys_bytes": 1.2e7,
		"argent_root_commit_seconds_sum": 0.25, "argent_root_commit_seconds_count": 4,
	}
	if !maps.Equal(m, want) {
		t.Errorf("ParseMetrics = %v, want %v", m, want)
	}
	if _, err := ParseMetrics(strings.NewReader("go_goroutines twelve\n")); err == nil {
		t.Error("ParseMetrics of a value that is not a number: no error")
	}
}

func TestProcMem(t *testing.T) {
	hwm, rss, err := ProcMem(1)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if hwm <= 0 || rss <= 0 || rss > hwm {
		t.Errorf("ProcMem(1) = %d, %d", hwm, rss)
	}
}

func TestDirSize(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"x": 10, "a/y": 20, "a/b/z": 30} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := DirSize(dir); got != 60 {
		t.Errorf("DirSize = %d, want 60", got)
	}
	if got := DirSize(filepath.Join(dir, "none")); got != 0 {
		t.Errorf("DirSize of a missing directory = %d, want 0", got)
	}
}

func TestCPUBetween(t *testing.T) {
	at := time.Unix(1000, 0)
	a := CPUSample{At: at, Self: 1, Machine: 10, PIDs: []float64{2, 3}, OK: true}
	b := CPUSample{At: at.Add(2 * time.Second), Self: 2, Machine: 16, PIDs: []float64{4, 3.5}, OK: true}
	u := CPUBetween(a, b)
	if !u.OK || u.Wall != 2 || u.Self != 0.5 || u.Machine != 3 || len(u.PIDs) != 2 || u.PIDs[0] != 1 || u.PIDs[1] != 0.25 {
		t.Errorf("CPUBetween = %+v", u)
	}
	if got := u.Other(); got != 1.25 {
		t.Errorf("Other = %v, want 1.25", got)
	}
	if u := CPUBetween(b, a); u.OK || u.Wall != 0 {
		t.Errorf("CPUBetween backwards = %+v, want zero", u)
	}
	b.OK = false
	if CPUBetween(a, b).OK {
		t.Error("CPUBetween of an incomplete sample is OK")
	}
}

func TestSampleCPU(t *testing.T) {
	s := SampleCPU([]int{os.Getpid()})
	if !s.OK {
		t.Skip("no /proc")
	}
	if len(s.PIDs) != 1 || s.Machine <= 0 || s.PIDs[0] < 0 {
		t.Errorf("SampleCPU = %+v", s)
	}
}

// TestCluster_StartProcess starts a peer process, checks that Close stops it
// by PID, and that a process that exits before it is ready is reported.
func TestCluster_StartProcess(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	c := &Cluster{Dir: t.TempDir()}
	p, err := c.StartProcess(context.Background(), Spec{
		Name: "peer", Bin: sleep, Args: []string{"60"},
		Ready: func(context.Context) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() <= 0 || p.Exited() || p.Client != nil {
		t.Fatalf("pid %d exited %v client %v", p.PID(), p.Exited(), p.Client)
	}
	start := time.Now()
	c.Close(false)
	if !p.Exited() || time.Since(start) > 5*time.Second {
		t.Errorf("Close: exited %v after %v", p.Exited(), time.Since(start))
	}

	c = &Cluster{Dir: t.TempDir()}
	defer c.Close(false)
	_, err = c.StartProcess(context.Background(), Spec{
		Name: "quitter", Bin: sleep, Args: []string{"0"},
		Ready: func(context.Context) error { return errors.New("not yet") },
	})
	if err == nil || !strings.Contains(err.Error(), "quitter exited") {
		t.Errorf("StartProcess of a process that exits: %v", err)
	}
}
