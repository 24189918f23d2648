// Package numfmt writes numbers for the benchmark reports.
package numfmt

import (
	"fmt"
	"strconv"
	"strings"
)

// Thousands writes n with a comma between groups of three digits:
// 1234567 as "1,234,567".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Bytes writes n bytes in B, KiB, MiB or GiB with three significant
// digits: 3<<20 as "3.00 MiB", 314000 as "307 KiB".
func Bytes(n float64) string {
	v := n
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if v < 1024 || u == "GiB" {
			switch {
			case u == "B":
				return fmt.Sprintf("%.0f B", v)
			case v < 10:
				return fmt.Sprintf("%.2f %s", v, u)
			case v < 100:
				return fmt.Sprintf("%.1f %s", v, u)
			default:
				return fmt.Sprintf("%.0f %s", v, u)
			}
		}
		v /= 1024
	}
	return ""
}

// Micros writes a latency of us microseconds as "48 µs" or, from a
// millisecond on, "4.42 ms".
func Micros(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}
