package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// results is everything one comparison measured; its JSON is
// bench/results/compare-DATE.json.
type results struct {
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	WallSeconds float64   `json:"wall_s"`
	Command     string    `json:"command"`
	Machine     machine   `json:"machine"`
	Settings    settings  `json:"settings"`
	// Datasets are the data sets loaded, in the order they ran; the
	// large one only for point reads.
	Datasets []datasetInfo `json:"datasets"`
	Loads    []loadResult  `json:"loads"`
	// OpenRates is the open-loop read rate of each data set and
	// distribution ("100k-256B/uniform"), requests per second.
	OpenRates      map[string]float64 `json:"open_rates"`
	Runs           []*runResult       `json:"runs"`
	RedisBenchmark []*rbResult        `json:"redis_benchmark"`
	Propagation    []*propResult      `json:"propagation"`
	// Group is what the group workload records besides its runs; nil
	// when it did not run.
	Group *groupInfo `json:"group,omitempty"`
	// Problems lists runs with errors or unmet open-loop rates.
	Problems []string `json:"problems,omitempty"`
	// Targets, DurableTargets and Tables are what the markdown section
	// shows: the aims of reads and writes against etcd and Redis, the aims of the durable write path (nil
	// when nothing they need ran), and the ratio tables.
	Targets        []target `json:"targets"`
	DurableTargets []target `json:"durable_targets,omitempty"`
	GroupTargets   []target `json:"group_targets,omitempty"`
	Tables         []table  `json:"tables"`
}

// settings is the part of the configuration a reader of the results needs.
type settings struct {
	Duration     string `json:"duration"`
	Rounds       int    `json:"rounds"`
	PropDuration string `json:"prop_duration"`
	// GroupDuration is that of each run of the group workload; empty in
	// results from before it.
	GroupDuration string    `json:"group_duration,omitempty"`
	Conns         int       `json:"conns"`
	Keys          int       `json:"keys"`
	BigKeys       int       `json:"big_keys"`
	Values        []int     `json:"values"`
	ZipfTheta     float64   `json:"zipf_theta"`
	OpenShare     float64   `json:"open_share"`
	MGetKeys      int       `json:"mget_keys"`
	Writers       []int     `json:"writers"`
	PropRates     []float64 `json:"prop_rates"`
	Quick         bool      `json:"quick"`
	Seed          uint64    `json:"seed"`
}

func settingsOf(c config) settings {
	return settings{
		Duration: c.duration.String(), Rounds: c.rounds, PropDuration: c.propDuration.String(), GroupDuration: c.groupDuration.String(), Conns: c.conns,
		Keys: c.keys, BigKeys: c.bigKeys, Values: c.values, ZipfTheta: c.theta, OpenShare: c.openShare,
		MGetKeys: c.mgetKeys, Writers: c.writers, PropRates: c.propRates, Quick: c.quick, Seed: c.seed,
	}
}

// loadResult is the time one data set took to load into one system.
type loadResult struct {
	Dataset string  `json:"dataset"`
	System  string  `json:"system"`
	What    string  `json:"what"`
	Keys    int     `json:"keys"`
	Seconds float64 `json:"seconds"`
}

// line is a run's one-line progress report.
func (r *runResult) line() string {
	loop := "closed"
	if r.Rate > 0 {
		loop = fmt.Sprintf("open %.0f/s", r.Rate)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %-9s %s: %8.0f ops/s  p50 %s  p99 %s  p99.9 %s ms",
		r.ID, r.System, loop, r.OpsPerSec, fmtMs(r.Latency.P50), fmtMs(r.Latency.P99), fmtMs(r.Latency.P999))
	if r.KeysPerSec > 0 {
		fmt.Fprintf(&b, "  %.0f keys/s", r.KeysPerSec)
	}
	fmt.Fprintf(&b, "  cores: server %.2f client %.2f other %.2f", r.ServerCores, r.ClientCores, r.OtherCores)
	if r.Misses > 0 {
		fmt.Fprintf(&b, "  misses %d", r.Misses)
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, "  ERRORS %d (%s)", r.Errors, errorSummary(r.ErrorKinds))
	}
	if r.Unsent > 0 {
		fmt.Fprintf(&b, "  UNSENT %d", r.Unsent)
	}
	return b.String()
}

// problems lists the runs whose figures need a caveat.
func (res *results) problems() []string {
	var out []string
	for _, r := range res.Runs {
		if r.Errors > 0 {
			out = append(out, fmt.Sprintf("%s: %d errors (%s)", r.ID, r.Errors, errorSummary(r.ErrorKinds)))
		}
		if r.Unsent > 0 {
			out = append(out, fmt.Sprintf("%s: %d requests due were never sent (the open-loop rate was not met)", r.ID, r.Unsent))
		}
	}
	for _, r := range res.RedisBenchmark {
		if r.ServerErrors != "" {
			out = append(out, fmt.Sprintf("%s: redis-benchmark reported %s", r.ID, r.ServerErrors))
		}
	}
	for _, r := range res.Propagation {
		if r.Errors > 0 || r.Seen < r.Written {
			out = append(out, fmt.Sprintf("%s: %d of %d writes seen, %d write errors", r.ID, r.Seen, r.Written, r.Errors))
		}
	}
	return append(out, groupProblems(res.Group)...)
}

// writeJSON writes res to dir/compare-DATE.json and dir/compare-latest.json
// and returns the first path.
func (res *results) writeJSON(dir string) (string, error) {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	dated := filepath.Join(dir, "compare-"+res.Started.UTC().Format("2006-01-02T150405Z")+".json")
	for _, p := range []string{dated, filepath.Join(dir, "compare-latest.json")} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("results: %w", err)
		}
	}
	return dated, nil
}

// find returns the run with id, or nil.
func (res *results) find(id string) *runResult {
	for _, r := range res.Runs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// findRB returns the redis-benchmark run with id, or nil.
func (res *results) findRB(id string) *rbResult {
	for _, r := range res.RedisBenchmark {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// loadRate is the keys per second at which ds was loaded into system, 0
// if it was not.
func (res *results) loadRate(ds datasetInfo, system string) float64 {
	for _, l := range res.Loads {
		if l.Dataset == ds.Slug && l.System == system && l.What == ds.Name && l.Seconds > 0 {
			return float64(l.Keys) / l.Seconds
		}
	}
	return 0
}

// findProp returns the propagation result with id, or nil.
func (res *results) findProp(id string) *propResult {
	for _, r := range res.Propagation {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// otherCores is the mean and the largest CPU, in cores, that processes
// other than the systems and this program took during the measured runs:
// on a shared machine, what explains a slow run.
func (res *results) otherCores() (mean, most float64) {
	for _, r := range res.Runs {
		mean += r.OtherCores
		most = max(most, r.OtherCores)
	}
	if len(res.Runs) > 0 {
		mean /= float64(len(res.Runs))
	}
	return mean, most
}

// otherCoresOf is the mean CPU, in cores, that other processes took during
// the runs whose IDs start with prefix; false if there are none (or prefix
// is empty).
func (res *results) otherCoresOf(prefix string) (float64, bool) {
	sum, n := 0.0, 0
	for _, r := range res.Runs {
		if prefix != "" && strings.HasPrefix(r.ID, prefix) {
			sum += r.OtherCores
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}
