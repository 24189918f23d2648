package raftnet

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// FuzzReceive feeds a stream's body to receive, the decoder of what a peer
// sends: it ends with io.EOF or an error wrapping argent.ErrCorruption,
// delivers only messages from the stream's sender to this member, each of
// which re-encodes to a message that decodes the same, and nothing after a
// frame it refused.
func FuzzReceive(f *testing.F) {
	u := func(v uint64) *uint64 { return &v }
	msgs := []*raftpb.Message{
		{Type: raftpb.MsgHeartbeat.Enum(), From: u(1), To: u(2), Term: u(3), Commit: u(7)},
		{Type: raftpb.MsgApp.Enum(), From: u(1), To: u(2), Term: u(3), LogTerm: u(2), Index: u(9), Commit: u(9),
			Entries: []*raftpb.Entry{{Term: u(3), Index: u(10), Data: []byte("batch")}, {Term: u(3), Index: u(11), Type: raftpb.EntryConfChangeV2.Enum()}}},
		{Type: raftpb.MsgVote.Enum(), From: u(1), To: u(2), Term: u(4), LogTerm: u(3), Index: u(11)},
		{Type: raftpb.MsgSnap.Enum(), From: u(1), To: u(2), Term: u(4), Snapshot: &raftpb.Snapshot{Data: []byte("snap"),
			Metadata: &raftpb.SnapshotMetadata{Index: u(20), Term: u(4), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}},
		{Type: raftpb.MsgHeartbeat.Enum(), From: u(3), To: u(2), Term: u(3)}, // from another member
	}
	var stream []byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		one := wire.AppendFrame(nil, wire.FrameRaftMessage, b)
		f.Add(one)
		f.Add(b)
		stream = append(stream, one...)
	}
	f.Add(stream)
	f.Add(wire.AppendFrame(nil, wire.FrameEntry, []byte{1}))
	f.Add(wire.AppendFrame(nil, wire.FrameRaftMessage, []byte{0xff, 0xff}))
	f.Fuzz(func(t *testing.T, in []byte) {
		// The input as a stream, and framed as one message, so that the
		// fuzzer reaches the protobuf decoding past the frame's checksum.
		for _, body := range [][]byte{in, wire.AppendFrame(nil, wire.FrameRaftMessage, in)} {
			checkReceive(t, body)
		}
	})
}

// checkReceive runs receive over body and checks what it delivered.
func checkReceive(t *testing.T, body []byte) {
	t.Helper()
	var got []*raftpb.Message
	tr := &Transport{cfg: Config{ID: 2, Deliver: func(m *raftpb.Message) { got = append(got, m) }}}
	var received atomic.Uint64
	err := tr.receive(bytes.NewReader(body), 1, &received)
	if err != io.EOF && !errors.Is(err, argent.ErrCorruption) {
		t.Fatalf("receive ended with %v, neither io.EOF nor corruption", err)
	}
	if received.Load() != uint64(len(got)) {
		t.Fatalf("counted %d messages, delivered %d", received.Load(), len(got))
	}
	// The delivered messages are those of the frames before the first
	// refused one.
	rest, n := body, 0
	for {
		typ, payload, used, perr := wire.ParseFrame(rest, MaxMessageSize)
		if perr != nil || typ != wire.FrameRaftMessage {
			break
		}
		m := new(raftpb.Message)
		if proto.Unmarshal(payload, m) != nil || m.GetFrom() != 1 || m.GetTo() != 2 {
			break
		}
		if n >= len(got) || !proto.Equal(m, got[n]) {
			t.Fatalf("message %d: delivered %v, the frame holds %v", n, got, m)
		}
		rest, n = rest[used:], n+1
	}
	if n != len(got) {
		t.Fatalf("delivered %d messages, the stream holds %d valid ones", len(got), n)
	}
	for _, m := range got {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("delivered message does not encode: %v", err)
		}
		m2 := new(raftpb.Message)
		if err := proto.Unmarshal(b, m2); err != nil || !proto.Equal(m, m2) {
			t.Fatalf("delivered message does not round-trip: %v", err)
		}
	}
}
