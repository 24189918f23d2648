package resp

import "time"

// SetReadIndexWait shortens how long reads wait for READINDEX.
func SetReadIndexWait(s *Server, d time.Duration) { s.readIndexWait = d }
