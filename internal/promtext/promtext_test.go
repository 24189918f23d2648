package promtext_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/argent-kv/argent/internal/promtext"
)

// testdata/root-metrics.txt is what a root's /metrics served after three
// puts and two gets: counters, gauges, labelled series, histograms and the
// Go runtime's summary.
func readNodeMetrics(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/root-metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse_NodeMetrics(t *testing.T) {
	samples, err := promtext.Parse(bytes.NewReader(readNodeMetrics(t)))
	if err != nil {
		t.Fatal(err)
	}
	bySeries := map[string]promtext.Sample{}
	for _, s := range samples {
		if _, dup := bySeries[s.Series()]; dup {
			t.Errorf("series %s read twice", s.Series())
		}
		bySeries[s.Series()] = s
	}
	for _, tc := range []struct {
		name   string
		series string
		want   float64
		labels map[string]string
	}{
		{name: "Counter", series: "argent_log_entries_sent_total", want: 0},
		{name: "Gauge", series: "argent_applied_index", want: 3},
		{name: "LabelledCounter", series: `argent_http_requests_total{code="200",route="put"}`, want: 3,
			labels: map[string]string{"code": "200", "route": "put"}},
		{name: "LabelledCounterOtherCode", series: `argent_http_requests_total{code="404",route="get"}`, want: 1},
		{name: "InfoGauge", series: `go_info{version="go1.26.8"}`, want: 1, labels: map[string]string{"version": "go1.26.8"}},
		{name: "HistogramBucket", series: `argent_root_group_batches_bucket{le="1"}`, want: 3, labels: map[string]string{"le": "1"}},
		{name: "HistogramInfBucket", series: `argent_root_group_batches_bucket{le="+Inf"}`, want: 3},
		{name: "HistogramSum", series: "argent_root_group_batches_sum", want: 3},
		{name: "HistogramCount", series: "argent_root_group_batches_count", want: 3},
		{name: "LabelledHistogramBucket", series: `argent_http_request_duration_seconds_bucket{route="put",le="+Inf"}`, want: 3,
			labels: map[string]string{"route": "put", "le": "+Inf"}},
		{name: "LabelledHistogramCount", series: `argent_http_request_duration_seconds_count{route="get"}`, want: 2},
		{name: "SummaryQuantile", series: `go_gc_duration_seconds{quantile="0.5"}`, want: 0.001250074},
		{name: "SummaryCount", series: "go_gc_duration_seconds_count", want: 1},
		{name: "Float", series: "process_virtual_memory_max_bytes", want: 1.8446744073709552e+19},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := bySeries[tc.series]
			if !ok {
				t.Fatalf("no sample %s", tc.series)
			}
			if s.Value != tc.want {
				t.Errorf("%s = %v, want %v", tc.series, s.Value, tc.want)
			}
			for name, want := range tc.labels {
				if got := s.Label(name); got != want {
					t.Errorf("label %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// Every sample line of a node's output comes back once, with its series
// written as the node wrote it and its value, and nothing else does.
func TestParse_EveryLine(t *testing.T) {
	text := readNodeMetrics(t)
	want := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		want[line[:sp]] = v
	}
	samples, err := promtext.Parse(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != len(want) {
		t.Errorf("%d samples, want %d", len(samples), len(want))
	}
	for _, s := range samples {
		if v, ok := want[s.Series()]; !ok || v != s.Value {
			t.Errorf("sample %s = %v; the text has %v (present %v)", s.Series(), s.Value, v, ok)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		want    []string // Series()=value
		wantErr string
	}{
		{name: "Empty", text: ""},
		{name: "Untyped", text: "a 1\nb{x=\"y\"} 2.5\n", want: []string{"a=1", `b{x="y"}=2.5`}},
		{name: "EscapedLabel", text: "# TYPE c counter\nc{path=\"a\\\"b\\\\c\\nd\"} 4\n", want: []string{`c{path="a\"b\\c\nd"}=4`}},
		{name: "Timestamp", text: "g 7 1700000000000\n", want: []string{"g=7"}},
		{name: "NotANumber", text: "a x\n", wantErr: `expected float as value, got "x"`},
		{name: "NoValue", text: "a\n", wantErr: "promtext:"},
		{name: "TwoTypeLines", text: "# TYPE a counter\na 1\n# TYPE a gauge\n", wantErr: "second TYPE line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples, err := promtext.Parse(strings.NewReader(tc.text))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range samples {
				got = append(got, s.Series()+"="+strconv.FormatFloat(s.Value, 'g', -1, 64))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
