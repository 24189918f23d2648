package pull

import "time"

// SetNow makes c read the time from now, and restarts it at now(), so
// that tests can move time by hand.
func (c *HeartbeatClock) SetNow(now func() time.Time) {
	c.now = now
	c.started = now()
}
