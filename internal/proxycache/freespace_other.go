//go:build !(linux || darwin || freebsd)

package proxycache

import "errors"

// freeSpace is not implemented here: the free-disk floor is not enforced
// (see floor.check).
func freeSpace(string) (uint64, error) {
	return 0, errors.New("proxycache: free space is not known on this system")
}
