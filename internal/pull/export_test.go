package pull

import (
	"context"
	"errors"
	"time"
)

// SetNow makes c read the time from now, and restarts it at now(), so
// that tests can move time by hand.
func (c *HeartbeatClock) SetNow(now func() time.Time) {
	c.now = now
	c.started = now()
}

// FollowOnce follows up for one stream, as Run does between two
// reconnects, and returns the error that ended it.
func (f *Follower) FollowOnce(ctx context.Context, up string) error { return f.follow(ctx, up) }

// Reason is the reason Run counts a stream that ended with err under:
// eof, cut, corruption, refused, stall or error.
func Reason(err error) string { return reason(err) }

// IsTooOld reports whether err is a parent's "too old: take a snapshot".
func IsTooOld(err error) bool {
	var e errTooOld
	return errors.As(err, &e)
}
