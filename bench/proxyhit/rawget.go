package main

import (
	"time"

	"github.com/argent-kv/argent/bench/internal/rawhttp"
)

// tierConn sends GET /v1/kv/{key} over one keep-alive connection and
// returns the status, the Argent-Tier header and the body length.
type tierConn struct {
	c *rawhttp.Conn
}

func newTierConn(addr string) *tierConn { return &tierConn{c: rawhttp.New(addr)} }

func (t *tierConn) close() { t.c.Close() }

// get reads key, within 30 s. On an error the connection is closed; the
// next call redials.
func (t *tierConn) get(key []byte) (status int, tier string, n int, err error) {
	t.c.SetDeadline(time.Now().Add(30 * time.Second))
	status, n, v, err := t.c.GetHeader(key, "Argent-Tier")
	return status, tierName(v), n, err
}

// knownTiers are returned as constants, so that a read does not allocate
// its tier's name.
var knownTiers = []string{"cache", "window", "filter", "replica", "root"}

func tierName(b []byte) string {
	for _, t := range knownTiers {
		if string(b) == t {
			return t
		}
	}
	return string(b)
}
