package proxycache

import (
	"sync"
	"time"
)

// floor decides whether free disk space allows admitting new keys. Asking
// the file system costs a system call, so an answer is reused for an
// interval; admission decisions may therefore lag the disk by that much.
type floor struct {
	min      uint64 // 0: no floor
	interval time.Duration
	now      func() time.Time
	free     func() (uint64, error)

	mu struct {
		sync.Mutex
		checked time.Time
		low     bool
		last    uint64 // free bytes at the last check
	}
}

// low reports whether free space is below the floor. When the free space
// cannot be read the floor is not enforced: refusing every admission
// because statfs failed would turn a monitoring problem into a performance
// one.
func (f *floor) low() bool {
	if f.min == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if !f.mu.checked.IsZero() && now.Sub(f.mu.checked) < f.interval {
		return f.mu.low
	}
	f.mu.checked = now
	free, err := f.free()
	if err != nil {
		f.mu.low = false
		return false
	}
	f.mu.last = free
	f.mu.low = free < f.min
	return f.mu.low
}
