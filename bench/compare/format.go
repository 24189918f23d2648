package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/argent-kv/argent/bench/internal/numfmt"
)

// fmtMs writes a latency in milliseconds with about three significant
// digits: 0.123, 1.23, 12.3, 123.
func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v) || v < 0:
		return "?"
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// fmtCount writes a rate or count rounded to a whole number with thousands
// separators: 45,123.
func fmtCount(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "?"
	}
	return numfmt.Thousands(int64(math.Round(v)))
}

// fmtRatio writes a/b as a factor: 4.12×, 0.87×, 12.3×; "–" when either
// is missing or b is 0.
func fmtRatio(a, b float64) string {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 10:
		return fmt.Sprintf("%.1f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

// fmtTriple writes three latencies as "p50 / p99 / p99.9".
func fmtTriple(l latency) string {
	if l.Count == 0 {
		return "–"
	}
	return fmtMs(l.P50) + " / " + fmtMs(l.P99) + " / " + fmtMs(l.P999)
}

// fmtTripleRatio writes the ratios of two triples, each a over b.
func fmtTripleRatio(a, b latency) string {
	if a.Count == 0 || b.Count == 0 {
		return "–"
	}
	return fmtRatio(a.P50, b.P50) + " / " + fmtRatio(a.P99, b.P99) + " / " + fmtRatio(a.P999, b.P999)
}
