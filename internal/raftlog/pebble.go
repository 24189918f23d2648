package raftlog

import (
	"fmt"
)

// A Pebble fatal error stops the storage as it stops a store
// (docs/DECISIONS.md, "A storage failure stops the node"); both use
// internal/pebblelog.

// fail records err as the write failure that stops the storage and returns
// it wrapping ErrStorageFailed.
func (s *Storage) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrStorageFailed, err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.logger.Error("raft log write failed: refusing writes; the member must stop", "err", err)
	}
	return err
}

// Failed returns the error that stopped the storage's writes, or nil.
func (s *Storage) Failed() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}
