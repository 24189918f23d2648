// Package promtext reads the Prometheus text exposition format, as a
// node's /metrics serves it, into flat samples: one per sample line of the
// text, named and labelled as the text writes them. The status tree, the
// multi-process tests and the benchmarks all read a node's metrics through
// it, with the parser of the Prometheus libraries underneath, so that none
// of them splits lines by hand.
//
//	samples, err := promtext.Parse(resp.Body)
//	for _, s := range samples {
//		if s.Name == "argent_http_requests_total" && s.Label("route") == "get" {
//			reads += s.Value
//		}
//	}
package promtext

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Label is one label of a sample.
type Label struct {
	Name, Value string
}

// Sample is one sample line of the text.
type Sample struct {
	// Name is the sample's name as the text writes it: a histogram x
	// gives x_bucket (one per bound, with label le), x_sum and x_count; a
	// summary gives x (one per quantile, with label quantile), x_sum and
	// x_count.
	Name string
	// Labels are in the order the text gave them, with a bucket's le or a
	// quantile's quantile last, as the Prometheus client writes them.
	Labels []Label
	Value  float64
}

// Label returns the value of the label name, or "" if the sample has none.
func (s Sample) Label(name string) string {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Series returns the sample's series as the text writes it:
// `name{a="1",le="0.5"}`, or the bare name when it has no labels.
func (s Sample) Series() string {
	if len(s.Labels) == 0 {
		return s.Name
	}
	var b strings.Builder
	b.WriteString(s.Name)
	b.WriteByte('{')
	for i, l := range s.Labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// labelEscaper escapes a label value as the text format does.
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// Parse reads the text format from r and returns its samples, by metric
// family name and then in the order of the text. Text that is not the
// format (a line without a value, a value that is not a number, a second
// TYPE line for one name) is an error, not skipped.
func Parse(r io.Reader) ([]Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("promtext: %w", err)
	}
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []Sample
	for _, name := range names {
		mf := families[name]
		for _, m := range mf.GetMetric() {
			out = appendSamples(out, name, mf.GetType(), m)
		}
	}
	return out, nil
}

// appendSamples appends the sample lines of one metric of family name.
func appendSamples(out []Sample, name string, typ dto.MetricType, m *dto.Metric) []Sample {
	labels := make([]Label, 0, len(m.GetLabel())+1)
	for _, l := range m.GetLabel() {
		labels = append(labels, Label{Name: l.GetName(), Value: l.GetValue()})
	}
	// with returns the labels with one more at the end.
	with := func(name string, v float64) []Label {
		return append(slices.Clip(labels), Label{Name: name, Value: formatFloat(v)})
	}
	switch typ {
	case dto.MetricType_COUNTER:
		return append(out, Sample{Name: name, Labels: labels, Value: m.GetCounter().GetValue()})
	case dto.MetricType_GAUGE:
		return append(out, Sample{Name: name, Labels: labels, Value: m.GetGauge().GetValue()})
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		h := m.GetHistogram()
		for _, b := range h.GetBucket() {
			n := float64(b.GetCumulativeCount()) + b.GetCumulativeCountFloat()
			out = append(out, Sample{Name: name + "_bucket", Labels: with("le", b.GetUpperBound()), Value: n})
		}
		return append(out,
			Sample{Name: name + "_sum", Labels: labels, Value: h.GetSampleSum()},
			Sample{Name: name + "_count", Labels: labels, Value: float64(h.GetSampleCount()) + h.GetSampleCountFloat()})
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		for _, q := range s.GetQuantile() {
			out = append(out, Sample{Name: name, Labels: with("quantile", q.GetQuantile()), Value: q.GetValue()})
		}
		return append(out,
			Sample{Name: name + "_sum", Labels: labels, Value: s.GetSampleSum()},
			Sample{Name: name + "_count", Labels: labels, Value: float64(s.GetSampleCount())})
	default:
		return append(out, Sample{Name: name, Labels: labels, Value: m.GetUntyped().GetValue()})
	}
}

// formatFloat writes a bound or quantile as the text format does.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
