package resp

import "time"

// SetReadIndexWait shortens how long reads wait for READINDEX.
func SetReadIndexWait(s *Server, d time.Duration) { s.readIndexWait = d }

// SetMaxPending lowers the bound on a connection's unsent replies and on
// its input queued behind a waiting command.
func SetMaxPending(s *Server, n int) { s.maxPending.Store(int64(n)) }
