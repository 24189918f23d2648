// Package pebblelog connects Pebble's logger to a node's slog.Logger and
// makes Pebble's fatal errors stop the write that met them.
//
// Pebble calls Fatalf when its write pipeline breaks (a failed WAL write or
// fsync) and carries on as if the write succeeded, so Fatalf must not
// return: Logger.Fatalf panics with a *Fatal, which the code that wrote
// recovers (Catch) and turns into an error that stops its storage.
//
//	opts.Logger = pebblelog.Logger{L: logger}
//	func (s *Store) write() (err error) {
//		defer pebblelog.Catch(&err, s.fail)
//		return s.db.Set(k, v, pebble.Sync)
//	}
package pebblelog

import (
	"fmt"
	"log/slog"
	"strings"
)

// Logger is a pebble.Logger: Pebble's routine information goes to L at
// debug level, its errors as errors, and Fatalf panics with a *Fatal.
type Logger struct{ L *slog.Logger }

// Infof logs at debug level.
func (p Logger) Infof(format string, args ...any) { p.L.Debug(msg(format, args)) }

// Errorf logs an error.
func (p Logger) Errorf(format string, args ...any) { p.L.Error(msg(format, args)) }

// Fatalf logs an error and panics with a *Fatal.
func (p Logger) Fatalf(format string, args ...any) {
	m := msg(format, args)
	p.L.Error(m)
	panic(&Fatal{Msg: m})
}

// Fatal is what Logger.Fatalf panics with.
type Fatal struct{ Msg string }

func (e *Fatal) Error() string { return e.Msg }

// Catch, deferred in a function that writes to Pebble, turns a *Fatal panic
// into *err = fail(the Fatal); any other panic goes on. It must be the
// deferred call itself (defer pebblelog.Catch(&err, fail)), since recover
// works only there.
func Catch(err *error, fail func(error) error) {
	if r := recover(); r != nil {
		fe, ok := r.(*Fatal)
		if !ok {
			panic(r)
		}
		*err = fail(fe)
	}
}

func msg(format string, args []any) string {
	m := fmt.Sprintf(format, args...)
	if !strings.HasPrefix(m, "pebble: ") {
		m = "pebble: " + m
	}
	return m
}
