// Package lookup is the replica side of a proxy's miss resolution, of its
// scans and of the shipping of its negative-lookup filter, and the client
// proxies use for them.
//
// A proxy serves every read as of its own applied index S (docs/CONTRACT.md section 3,
// promise 5). On a miss it asks a replica for "K as of S":
//
//	GET  /internal/v1/lookup?key=K&at=S        one key (K percent-encoded, any bytes)
//	POST /internal/v1/lookup?at=S              {"keys":["k1","k2"]}, every key at one index
//	GET  /internal/v1/scan?prefix=P&after=K&limit=L&at=S[&wait=D]
//	                                           a page of the keys with prefix P after K, as of S
//	GET  /internal/v1/filter[?min_index=N]     the negative-lookup filter of the keys present
//
// The replica, at applied index A, answers:
//
//   - A >= S, S within its MVCC history: the value at S (200, raw value,
//     Argent-Index: S, Argent-Mod-Index: M) or absent (404 not_found,
//     Argent-Index: S).
//   - A < S (the replica is behind): the value at A, Argent-Index: A. The
//     proxy uses its sliding window of recent updates to decide whether the
//     value at A is still the value at S; Result.Index tells which case it is.
//   - S below the history horizon: 410 compacted, Argent-Index: A.
//   - Bad input: 400 invalid (413 too_large for a key over the limit or too
//     many keys), and nothing is read.
//
// The many-key form answers the public mget shape,
// {"index":X,"items":[{"key":"k","value":"<base64>","mod_index":7},{"key":"j","absent":true}]},
// every key read at the one index X (S, or A when behind). Its keys travel
// as JSON strings and so must be valid UTF-8; use the one-key form for others.
//
// A scan page is answered only as of S itself, never as of the replica's own
// index: a proxy holds only some keys and could not prove a page as of A < S
// for S. The replica at A answers:
//
//   - A >= S, S within its MVCC history: 200 with Argent-Index: S and
//     {"index":S,"items":[{"key":"<base64>","value":"<base64>","mod_index":7}],"more":true}.
//     Keys are base64 like values, since they may be any bytes; P and K are
//     percent-encoded like K in a lookup. "more" says keys follow the last
//     item. A page holds at most L keys (L cut to Config.MaxScanLimit) and
//     about Config.MaxScanBytes of keys and values (at least one item).
//   - A < S: the scan waits for the replica to reach S, at most D
//     (Config.ScanWait, 500 ms by default, when D is absent or longer), then
//     answers 504 timeout with Argent-Index: A; Client.Scan returns ErrBehind.
//   - S below the history horizon: 410 compacted, Argent-Index: A.
//   - Bad input: 400 invalid (413 too_large for P or K longer than the key
//     limit), and nothing is read.
//
// The filter is built from one consistent view of the store (a Pebble
// snapshot at the replica's applied index), sized for half as many keys again
// as are present, and encoded as negfilter.Filter's MarshalBinary; the
// answer's Argent-Index is the index it stands for. A replica builds at most
// one filter at a time and serves the last one built again while it is at
// the current applied index or younger than Config.FilterMaxAge (and at least
// min_index, when the replica has reached it).
//
// A request may carry Argent-Dataset (the proxy's dataset ID); a replica of
// another dataset refuses it with 409 dataset_mismatch, and a replica with no
// data yet (bootstrapping) answers 503 unavailable.
//
// Proxies use Client:
//
//	c, _ := lookup.NewClient("10.0.0.7:7401", &lookup.ClientOptions{HTTPClient: shared, Dataset: ds})
//	r, err := c.Get(ctx, key, s)
//	switch {
//	case errors.Is(err, argent.ErrCompacted): // s is older than the replica's history
//	case errors.Is(err, argent.ErrUnavailable): // try another replica
//	case err != nil:
//	case r.Index < s: // the replica is behind: the value is as of r.Index
//	default: // r is the value at s
//	}
//	items, more, err := c.Scan(ctx, prefix, after, 100, s)
//	// err wraps ErrBehind (and argent.ErrUnavailable) when the replica did
//	// not reach s in time; else items are the page as of s exactly.
package lookup
