//go:build unix

package main

import (
	"io/fs"
	"path/filepath"
	"syscall"
)

// diskUsage returns what du(1) reports for dir: the bytes of the blocks
// allocated to its files (Pebble preallocates its WAL files, so this can be
// far above the sum of their sizes), and false if it could not tell.
func diskUsage(dir string) (int64, bool) {
	var total int64
	ok := true
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed meanwhile
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, isStat := info.Sys().(*syscall.Stat_t)
		if !isStat {
			ok = false
			return nil
		}
		total += int64(st.Blocks) * 512
		return nil
	})
	return total, ok && err == nil
}
