// Package dcstream is a data center's stream of resolved misses (the
// reactive prefetch of Quicksilver v2): a relay publishes every key it
// resolved at a replica for one of its proxies, and every proxy of the DC
// subscribed to it can insert the answer into its own cache, so the key
// misses once per DC instead of once per proxy.
//
// The stream is GET /internal/v1/dc/misses (Path): a long-lived answer of
// newline-delimited JSON, one object a line (format version 2, in the
// Argent-Stream-Version header):
//
//	{"key":"<base64>","value":"<base64>","mod_index":7,"absent":false,"index":123,"crc":3141592653}
//	{"key":"<base64>","mod_index":0,"absent":true,"index":123,"crc":2718281828}
//	{"progress":true}
//
// A miss line's crc is the CRC-32C of the line up to `,"crc"`: a proxy
// caches what it takes from the stream, so a line damaged in transit is
// refused (ErrMalformed ends the subscription, which starts again) rather
// than cached.
//
// A miss line says that Key had Value (written at ModIndex) at index Index,
// or was absent there: Index is the state the replica answered from (its
// Argent-Index), which may be lower than the index the miss was asked at
// when that replica was behind. A proxy at applied index P may take a line
// as the value at P only if it can prove that nothing changed Key in
// (Index, P] (its sliding window), and must not take one with Index > P
// until it reaches Index. A progress line is sent every second, so that a
// subscriber tells a quiet stream from a dead one.
//
// Each subscriber has a bounded buffer: a subscriber that does not keep up
// loses the oldest misses (counted in HubStats.Drops), never the publisher's
// time. A request carrying Argent-Dataset for another dataset is refused
// with 409 dataset_mismatch.
//
// The relay serves a Hub; a proxy subscribes with Subscribe:
//
//	hub := dcstream.NewHub(dcstream.HubOptions{Dataset: ring.Dataset})
//	mux.Handle(dcstream.Path, hub)
//	hub.Publish(dcstream.Miss{Key: k, Value: v, ModIndex: 7, Index: 123})
//
//	for ctx.Err() == nil {
//		err := dcstream.Subscribe(ctx, relayAddr, func(m dcstream.Miss) { ... })
//		// err: the stream broke or stalled; subscribe again
//	}
package dcstream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/argent-kv/argent"
)

// Path is where a relay serves the stream.
const Path = "/internal/v1/dc/misses"

// Version is the stream's format version, sent in HeaderVersion. A
// subscriber refuses a stream of another version.
const Version = "2"

// HeaderVersion carries Version on the stream's answer.
const HeaderVersion = "Argent-Stream-Version"

// HeaderDataset carries the subscriber's dataset ID (argent.DatasetID's
// String form), as in the other node-to-node protocols.
const HeaderDataset = "Argent-Dataset"

// ContentType is the stream's content type.
const ContentType = "application/x-ndjson"

// ErrMalformed is returned (wrapped) by DecodeLine for a line that is not a
// valid miss or progress line, and ends a subscription.
var ErrMalformed = errors.New("dcstream: malformed line")

// Miss is one resolved miss: Key's value at index Index, or that it was
// absent there.
type Miss struct {
	Key []byte
	// Value is the key's value; nil when Absent.
	Value []byte
	// ModIndex is the index of the batch that last wrote Key, at most
	// Index; 0 when Absent.
	ModIndex argent.Index
	Absent   bool
	// Index is the state the answer is valid at.
	Index argent.Index
}

// size is what m costs a subscriber's buffer.
func (m *Miss) size() int { return len(m.Key) + len(m.Value) + 64 }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendLine appends m's line, newline included, to dst.
func AppendLine(dst []byte, m *Miss) []byte {
	start := len(dst)
	dst = appendFields(dst, m)
	dst = append(dst, `,"crc":`...)
	dst = strconv.AppendUint(dst, uint64(crc32.Checksum(dst[start:len(dst)-len(`,"crc":`)], castagnoli)), 10)
	return append(dst, "}\n"...)
}

// appendFields appends m's line up to its crc.
func appendFields(dst []byte, m *Miss) []byte {
	dst = append(dst, `{"key":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, m.Key)
	dst = append(dst, '"')
	if !m.Absent {
		dst = append(dst, `,"value":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, m.Value)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"mod_index":`...)
	dst = strconv.AppendUint(dst, uint64(m.ModIndex), 10)
	dst = append(dst, `,"absent":`...)
	dst = strconv.AppendBool(dst, m.Absent)
	dst = append(dst, `,"index":`...)
	return strconv.AppendUint(dst, uint64(m.Index), 10)
}

// ProgressLine is the progress line, newline included.
const ProgressLine = "{\"progress\":true}\n"

// line is the JSON form of a line, for decoding.
type line struct {
	Key      []byte       `json:"key"`
	Value    []byte       `json:"value"`
	ModIndex argent.Index `json:"mod_index"`
	Absent   bool         `json:"absent"`
	Index    argent.Index `json:"index"`
	Progress bool         `json:"progress"`
	CRC      *uint32      `json:"crc"`
}

// DecodeLine decodes one line (without or with its newline): a miss, or
// progress true for a progress line. A line that breaks the format (a
// present key without a mod index, an absent one with a value, a mod index
// past the index) or whose crc does not match fails with an error wrapping
// ErrMalformed.
func DecodeLine(b []byte) (m Miss, progress bool, err error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Miss{}, false, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if l.Progress {
		return Miss{}, true, nil
	}
	m = Miss{Key: l.Key, Value: l.Value, ModIndex: l.ModIndex, Absent: l.Absent, Index: l.Index}
	switch {
	case len(m.Key) == 0:
		return Miss{}, false, fmt.Errorf("%w: no key", ErrMalformed)
	case m.Index == 0:
		return Miss{}, false, fmt.Errorf("%w: key %q without an index", ErrMalformed, m.Key)
	case m.Absent && (m.ModIndex != 0 || len(m.Value) != 0):
		return Miss{}, false, fmt.Errorf("%w: absent key %q with a value", ErrMalformed, m.Key)
	case !m.Absent && (m.ModIndex == 0 || m.ModIndex > m.Index):
		return Miss{}, false, fmt.Errorf("%w: key %q has mod index %d at index %d", ErrMalformed, m.Key, m.ModIndex, m.Index)
	}
	if l.CRC == nil {
		return Miss{}, false, fmt.Errorf("%w: key %q without a crc", ErrMalformed, m.Key)
	}
	// The line as it was sent, but for its crc, is the line m encodes to.
	if sum := crc32.Checksum(appendFields(nil, &m), castagnoli); sum != *l.CRC {
		return Miss{}, false, fmt.Errorf("%w: key %q: crc %d, computed %d (damaged in transit)", ErrMalformed, m.Key, *l.CRC, sum)
	}
	if !m.Absent && m.Value == nil {
		m.Value = []byte{}
	}
	return m, false, nil
}
