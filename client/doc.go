// Package client is the Go client of argent's HTTP API (docs/CONTRACT.md
// section 4). It also exports the API's JSON shapes and error codes: the very
// types the server encodes and decodes (they are defined once, in the
// module's internal/apiwire, and re-exported here with type aliases).
//
// A Client talks to one node, or to several with failover (New with
// "a:7401,b:7401", or NewFailover): a request that cannot connect, or meets
// a node that is not ready yet (503 not_ready), goes to the next node; any
// other answer is final. Reads are served by that node from its own
// state at some index S, which every answer reports; writes go to the root
// (a non-root node forwards or redirects them) and return the index of the
// committed batch. Passing that index as ReadOptions.MinIndex to a later read
// makes the read see the write, on any node:
//
//	c, err := client.New("127.0.0.1:7400")
//	if err != nil {
//		return err
//	}
//	idx, err := c.Put(ctx, []byte("config/greeting"), []byte("hello"))
//	if err != nil {
//		return err
//	}
//	v, err := c.Get(ctx, []byte("config/greeting"), client.ReadOptions{MinIndex: idx})
//	switch {
//	case errors.Is(err, argent.ErrNotFound):
//		// absent at index v.Index
//	case err != nil:
//		return err
//	}
//	fmt.Printf("%s at index %d\n", v.Value, v.Index)
//
//	w, err := c.Watch(ctx, []byte("config/"), idx+1)
//	if err != nil {
//		return err
//	}
//	defer w.Close()
//	for {
//		ev, err := w.Next()
//		if err != nil {
//			return err // resume with c.Watch(ctx, prefix, last+1)
//		}
//		if !ev.Progress {
//			apply(ev.Ops)
//		}
//	}
//
// A Session does that bookkeeping: it remembers the highest index it has
// written or read and sends it as min_index with every read, so its reads
// are never older than its own past, whichever node answers:
//
//	s := c.Session()
//	if _, err := s.Put(ctx, []byte("config/greeting"), []byte("hello")); err != nil {
//		return err
//	}
//	v, err = s.On(nearbyReplica).Get(ctx, []byte("config/greeting"), client.ReadOptions{})
//
// Conditional writes use Txn:
//
//	_, err = c.Txn(ctx, argent.Batch{
//		Conditions: []argent.Condition{{Key: []byte("lock"), ModIndex: 0}}, // must be absent
//		Ops:        []argent.Op{{Type: argent.OpPut, Key: []byte("lock"), Value: []byte("me")}},
//	})
//	var ce *argent.ConditionError
//	if errors.As(err, &ce) {
//		// ce.Key is at mod index ce.Got
//	}
//
// # Errors
//
// Every non-2xx answer becomes an *Error with the HTTP status, the API's error
// code (CodeNotFound, CodeTimeout, ...) and the server's message. It unwraps to
// the argent sentinel error of its code, so errors.Is(err, argent.ErrNotFound),
// errors.Is(err, argent.ErrTimeout) and the like work; a failed condition
// unwraps to a *argent.ConditionError. Transport errors and a done context are
// returned wrapped, so errors.Is(err, context.Canceled) works too.
//
// # Keys
//
// Keys are bytes. In URLs (Get, Put, Delete, and the prefix and after of Scan
// and Watch) they are percent-encoded and may hold any bytes. In JSON bodies
// and answers (MGet, Txn, and the keys of Scan pages and Watch events) they
// are JSON strings and must be valid UTF-8: the client refuses other keys in a
// request with argent.ErrInvalid, and such keys come back from the server with
// the bad bytes replaced by U+FFFD. Use UTF-8 keys. Values may hold any bytes
// everywhere; they are base64 in JSON.
package client
