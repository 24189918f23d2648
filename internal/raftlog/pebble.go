package raftlog

import (
	"fmt"
	"log/slog"
	"strings"
)

// The logger and the fatal-error pattern below are those of internal/kv
// (docs/DECISIONS.md, "A storage failure stops the node"), copied rather
// than shared so that the Raft log does not depend on the key-value store.

// fatalError is what pebbleLogger.Fatalf panics with: Pebble calls Fatalf
// when its write pipeline breaks (a failed WAL write or fsync) and carries
// on as if the write succeeded, so Fatalf must not return.
type fatalError struct{ msg string }

func (e fatalError) Error() string { return e.msg }

// catchFatal turns a fatalError panic in a write to Pebble into *err (and
// fails the storage); any other panic goes on.
func (s *Storage) catchFatal(err *error) {
	if r := recover(); r != nil {
		fe, ok := r.(fatalError)
		if !ok {
			panic(r)
		}
		*err = s.fail(fe)
	}
}

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

// pebbleLogger sends Pebble's log lines to the member's log: its routine
// information at debug level, its errors as errors.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) { p.l.Debug(pebbleMsg(format, args)) }

func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(pebbleMsg(format, args)) }

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := pebbleMsg(format, args)
	p.l.Error(msg)
	panic(fatalError{msg: msg})
}

func pebbleMsg(format string, args []any) string {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasPrefix(msg, "pebble: ") {
		msg = "pebble: " + msg
	}
	return msg
}
