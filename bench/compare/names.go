package main

import (
	"fmt"
	"strconv"
)

// countName writes a key count the way the tables do: 100k, 1M, 20k, 1234.
func countName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// countSlug is countName for run IDs.
func countSlug(n int) string { return countName(n) }

// sizeName writes a value size: 256 B, 4 KiB.
func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// sizeSlug is sizeName for run IDs: 256B, 4KiB.
func sizeSlug(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}
