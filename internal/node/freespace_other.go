//go:build !unix

package node

import "errors"

// freeSpace is not known on this platform: argent_disk_free_bytes reads -1.
func freeSpace(string) (uint64, error) {
	return 0, errors.New("node: free disk space is not known on this platform")
}
