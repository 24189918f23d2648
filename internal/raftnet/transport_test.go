package raftnet_test

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/raftnet"
	"github.com/argent-kv/argent/internal/testutil/faultproxy"
)

// Every member sends numbered messages to every other one, in bursts of
// various sizes from one goroutine (as a Ready loop does); each receiver
// gets each sender's messages once, in order.
func TestTransport_Send(t *testing.T) {
	const perPeer = 500
	for _, tc := range []struct {
		name    string
		members int
	}{
		{name: "TwoMembers", members: 2},
		{name: "ThreeMembers", members: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ms []*member
			for id := range tc.members {
				ms = append(ms, newMember(t, uint64(id+1)))
			}
			connect(ms...)
			var wg sync.WaitGroup
			for _, a := range ms {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(a.id, 0))
					for i := uint64(1); i <= perPeer; {
						var batch []*raftpb.Message
						for n := rng.IntN(20) + 1; n > 0 && i <= perPeer; n-- {
							for _, b := range ms {
								if b != a {
									batch = append(batch, msg(a.id, b.id, i))
								}
							}
							i++
						}
						a.tr.Send(batch)
						if rng.IntN(4) == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			for _, b := range ms {
				for _, a := range ms {
					if a != b {
						waitFor(t, "all messages", func() bool { return len(b.got.from(a.id)) >= perPeer })
					}
				}
			}
			for _, b := range ms {
				for _, a := range ms {
					if a == b {
						continue
					}
					if got := b.got.from(a.id); !slices.Equal(got, seq(perPeer)) {
						t.Errorf("member %d got from %d: %v, want 1..%d in order", b.id, a.id, got, perPeer)
					}
					want := raftnet.PeerStats{Addr: b.addr, Connected: true, Sent: perPeer, Received: perPeer}
					if got := a.tr.Stats()[b.id]; got != want {
						t.Errorf("member %d's stats of %d: %+v, want %+v", a.id, b.id, got, want)
					}
					if n := a.rep.unreachableCount(b.id); n != 0 {
						t.Errorf("member %d reported %d unreachable %d times", a.id, b.id, n)
					}
				}
			}
		})
	}
}

// A message sent on an idle stream goes out at once: a hundred round trips
// take far less than a batching timer of a few milliseconds per hop would.
func TestTransport_SendIdleLatency(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 0)})
	waitFor(t, "the stream", func() bool { return b.got.len() == 1 && b.tr.Stats()[1].Connected })
	const rounds = 100
	start := time.Now()
	for i := uint64(1); i <= rounds; i++ {
		a.tr.Send([]*raftpb.Message{msg(1, 2, i)})
		waitFor(t, "the ping", func() bool { return b.got.len() == int(i)+1 })
		b.tr.Send([]*raftpb.Message{msg(2, 1, i)})
		waitFor(t, "the pong", func() bool { return a.got.len() == int(i) })
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d round trips took %v", rounds, d)
	}
	t.Logf("%d round trips in %v", rounds, time.Since(start))
}

// A peer that cannot be reached is reported, its messages dropped; once it
// can be reached its stream opens again and messages flow, in order. The
// same when a stream breaks under way. The failures are logged once.
func TestTransport_Reconnect(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	p := faultproxy.Start(t, b.addr)
	p.Cut()
	a.tr.SetPeer(2, p.Addr())

	var next uint64
	send := func() {
		next++
		a.tr.Send([]*raftpb.Message{msg(1, 2, next)})
		time.Sleep(time.Millisecond)
	}
	sendUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			send()
		}
	}

	sendUntil("drops", func() bool { return a.rep.unreachableCount(2) > 0 && a.tr.Stats()[2].Dropped > 0 })
	if st := a.tr.Stats()[2]; st.Connected {
		t.Errorf("stats of a cut peer: %+v", st)
	}
	if n := b.got.len(); n != 0 {
		t.Fatalf("a cut peer got %d messages", n)
	}

	p.Restore()
	sendUntil("messages after the peer came up", func() bool { return b.got.len() > 0 })
	sendUntil("more messages", func() bool { return b.got.len() > 20 })

	// Break the open stream.
	unreachable := a.rep.unreachableCount(2)
	p.Cut()
	sendUntil("drops after the cut", func() bool { return a.rep.unreachableCount(2) > unreachable })
	p.Restore()
	received := b.got.len()
	sendUntil("messages after the second cut", func() bool { return b.got.len() > received+20 })

	// Every message offered was written or dropped; those written before
	// a cut may be lost with it, but none arrives twice or out of order.
	var st raftnet.PeerStats
	waitFor(t, "the queue to drain", func() bool { st = a.tr.Stats()[2]; return st.Sent+st.Dropped == next })
	waitFor(t, "the last message", func() bool { got := b.got.from(1); return got[len(got)-1] == next })
	got := b.got.from(1)
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("messages out of order or repeated: %v", got)
	}
	if uint64(len(got)) > st.Sent {
		t.Errorf("%d messages received, %d sent", len(got), st.Sent)
	}
	if n := len(a.logs.matching("cannot reach peer", "peer=2")); n != 1 {
		t.Errorf("%d log lines about the failures, want 1 (the next after 30 s): %q", n, a.logs.matching("peer=2"))
	}
	if n := len(a.logs.matching("peer reachable again", "peer=2")); n != 1 {
		t.Errorf("%d log lines about the recovery, want 1", n)
	}
}

// However often a peer fails, it costs one log line per 30 s.
func TestTransport_FailureLogLimited(t *testing.T) {
	a := newMember(t, 1, func(c *raftnet.Config) { c.RetryMin, c.RetryMax = time.Millisecond, time.Millisecond })
	p := faultproxy.Start(t, "127.0.0.1:1")
	p.Cut()
	a.tr.SetPeer(2, p.Addr())
	waitFor(t, "attempts", func() bool { return p.Stats().Refused >= 50 })
	if got := a.logs.matching("cannot reach peer"); len(got) != 1 {
		t.Errorf("log lines after 50 failed attempts: %q, want 1", got)
	}
}

// A stream from another group, or opened to the wrong member, is refused:
// the sender reports the peer unreachable and logs the refusal, the
// receiver logs it and delivers nothing. A member that does not know its
// group yet talks to any.
func TestTransport_Refused(t *testing.T) {
	other := argent.DatasetID{0xc3}
	for _, tc := range []struct {
		name                string
		sender, receiver    argent.DatasetID
		peerID              uint64 // the ID the sender gives the receiver
		wantRefusal         string // "" if the stream is accepted
		wantReceiverLogLine bool
	}{
		{name: "SameGroup", sender: testGroup, receiver: testGroup, peerID: 2},
		{name: "ReceiverGroupUnknown", sender: testGroup, peerID: 2},
		{name: "SenderGroupUnknown", receiver: testGroup, peerID: 2},
		{name: "OtherGroup", sender: testGroup, receiver: other, peerID: 2, wantRefusal: "409 dataset_mismatch"},
		{name: "WrongReceiver", sender: testGroup, receiver: testGroup, peerID: 3, wantRefusal: "421 invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newMember(t, 1, func(c *raftnet.Config) { c.Group = tc.sender })
			b := newMember(t, 2, func(c *raftnet.Config) { c.Group = tc.receiver })
			a.tr.SetPeer(tc.peerID, b.addr)
			a.tr.Send([]*raftpb.Message{msg(1, tc.peerID, 1)})
			if tc.wantRefusal == "" {
				waitFor(t, "the message", func() bool { return b.got.len() == 1 })
				return
			}
			waitFor(t, "the report", func() bool { return a.rep.unreachableCount(tc.peerID) > 0 })
			waitFor(t, "the sender's log", func() bool { return len(a.logs.matching("cannot reach peer", tc.wantRefusal)) > 0 })
			if got := b.logs.matching("stream refused"); len(got) != 1 {
				t.Errorf("receiver logged %q, want one refusal", got)
			}
			if n := b.got.len(); n != 0 {
				t.Errorf("receiver got %d messages", n)
			}
		})
	}
}

// When a peer cannot take messages as fast as they come (here its Deliver
// blocks), its queue stays at QueueLen and the rest is dropped and
// reported; once it takes them again it gets every message not dropped, in
// order.
func TestTransport_QueueBound(t *testing.T) {
	const queueLen = 16
	a := newMember(t, 1, func(c *raftnet.Config) { c.QueueLen, c.WriteTimeout = queueLen, time.Minute })
	b := newMember(t, 2)
	release := make(chan struct{})
	b.got.block = release
	connect(a, b)

	payload := bytes.Repeat([]byte{7}, 64<<10)
	var offered uint64
	deadline := time.Now().Add(10 * time.Second)
	for a.tr.Stats()[2].Dropped < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("no drops after %d messages of 64 KiB to a blocked peer: %+v", offered, a.tr.Stats()[2])
		}
		offered++
		m := msg(1, 2, offered)
		m.Entries = []*raftpb.Entry{{Data: payload}}
		a.tr.Send([]*raftpb.Message{m})
		if offered%8 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	st := a.tr.Stats()[2]
	if st.Queued > queueLen {
		t.Errorf("%d messages queued, over the bound of %d", st.Queued, queueLen)
	}
	if a.rep.unreachableCount(2) == 0 {
		waitFor(t, "the report of the drops", func() bool { return a.rep.unreachableCount(2) > 0 })
	}
	t.Logf("offered %d messages of 64 KiB: %+v", offered, st)

	b.got.mu.Lock()
	b.got.block = nil
	b.got.mu.Unlock()
	close(release)
	waitFor(t, "every message sent or dropped", func() bool { st = a.tr.Stats()[2]; return st.Sent+st.Dropped == offered })
	waitFor(t, "every message sent", func() bool { return uint64(b.got.len()) == st.Sent })
	if got := b.got.from(1); !slices.IsSorted(got) {
		t.Errorf("messages out of order: %v", got)
	}
}

// Messages of several MB (a MsgApp with large entries, many entries) arrive
// whole.
func TestTransport_SendLarge(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	connect(a, b)
	rng := rand.NewChaCha8([32]byte{1})
	block := make([]byte, 64<<10)
	data := func(n int) []byte {
		_, _ = rng.Read(block)
		return bytes.Repeat(block, n/len(block)+1)[:n]
	}
	var want []*raftpb.Message
	for i, shape := range [][]int{{6 << 20}, slices.Repeat([]int{1 << 20}, 8), {4 << 20, 10, 3 << 20}, {100}} {
		m := msg(1, 2, uint64(i+1))
		for j, n := range shape {
			m.Entries = append(m.Entries, &raftpb.Entry{Index: new(uint64(j + 1)), Term: new(uint64(1)), Data: data(n)})
		}
		want = append(want, m)
	}
	a.tr.Send(want)
	waitFor(t, "the messages", func() bool { return b.got.len() == len(want) })
	for i, m := range b.got.all() {
		if !proto.Equal(m, want[i]) {
			t.Errorf("message %d differs from the one sent", i+1)
		}
	}
}

// A MsgSnap is reported done once written, and failed when its peer cannot
// be reached.
func TestTransport_SnapshotDone(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	p := faultproxy.Start(t, "127.0.0.1:1")
	p.Cut()
	a.tr.SetPeer(2, b.addr)
	a.tr.SetPeer(3, p.Addr())
	snap := func(to uint64) *raftpb.Message {
		return &raftpb.Message{
			Type: raftpb.MsgSnap.Enum(), From: new(uint64(1)), To: new(to), Term: new(uint64(3)),
			Snapshot: &raftpb.Snapshot{
				Data: []byte("dataset at index 10"),
				Metadata: &raftpb.SnapshotMetadata{
					Index: new(uint64(10)), Term: new(uint64(2)),
					ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
				},
			},
		}
	}
	a.tr.Send([]*raftpb.Message{snap(2), snap(3)})
	waitFor(t, "the snapshot", func() bool { return b.got.len() == 1 })
	if got := b.got.all()[0]; !proto.Equal(got, snap(2)) {
		t.Errorf("got %v, want %v", got, snap(2))
	}
	waitFor(t, "the reports", func() bool { return len(a.rep.snapshots()) == 2 })
	got := a.rep.snapshots()
	slices.SortFunc(got, func(x, y snapResult) int { return int(x.id) - int(y.id) })
	if want := []snapResult{{2, true}, {3, false}}; !slices.Equal(got, want) {
		t.Errorf("snapshot reports %v, want %v", got, want)
	}
	if a.rep.unreachableCount(3) == 0 {
		t.Errorf("peer 3 not reported unreachable")
	}
}

// SetPeer with a new address moves the stream there.
func TestTransport_SetPeerMoves(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	p1, p2 := faultproxy.Start(t, b.addr), faultproxy.Start(t, b.addr)
	a.tr.SetPeer(2, p1.Addr())
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1)})
	waitFor(t, "the first message", func() bool { return b.got.len() == 1 })

	a.tr.SetPeer(2, p2.Addr())
	waitFor(t, "the stream to move", func() bool { return p2.Stats().Active == 1 && a.tr.Stats()[2].Connected })
	p1.Cut()
	a.tr.Send([]*raftpb.Message{msg(1, 2, 2)})
	waitFor(t, "the second message", func() bool { return b.got.len() == 2 })
	if got := a.tr.Stats()[2].Addr; got != p2.Addr() {
		t.Errorf("peer's address %s, want %s", got, p2.Addr())
	}
	if got := b.got.from(1); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("got %v", got)
	}
}

// Messages for a peer that was never set, or was removed, are dropped and
// reported.
func TestTransport_SendUnknownPeer(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1), msg(1, 9, 1)})
	waitFor(t, "the report", func() bool { return a.rep.unreachableCount(9) == 1 })
	waitFor(t, "the message", func() bool { return b.got.len() == 1 })

	a.tr.RemovePeer(2)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 2)})
	waitFor(t, "the report", func() bool { return a.rep.unreachableCount(2) == 1 })
	if _, ok := a.tr.Stats()[2]; ok {
		t.Errorf("a removed peer is still in the stats")
	}
}

// Close with streams open, both ways and busy, ends them and every
// goroutine of the transports; no callback comes after it, Send does
// nothing and the handler refuses.
func TestTransport_Close(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	var ms []*member
	for id := uint64(1); id <= 3; id++ {
		ms = append(ms, startMember(t, id))
	}
	connect(ms...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range ms {
		wg.Go(func() {
			for i := uint64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var batch []*raftpb.Message
				for _, b := range ms {
					if b != a {
						batch = append(batch, msg(a.id, b.id, i))
					}
				}
				a.tr.Send(batch)
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	waitFor(t, "traffic", func() bool {
		for _, m := range ms {
			if m.got.len() < 100 {
				return false
			}
		}
		return true
	})

	start := time.Now()
	for _, m := range ms {
		if err := m.tr.Close(); err != nil {
			t.Errorf("close member %d: %v", m.id, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closing took %v", d)
	}
	close(stop)
	wg.Wait()

	a := ms[0]
	unreachable := a.rep.unreachableCount(2)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1), msg(1, 9, 1)})
	resp, err := a.srv.Client().Do(streamRequest(t, a, bytes.NewReader(nil)))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a closed member answered %d, want 503", resp.StatusCode)
	}
	if err := a.tr.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := a.rep.unreachableCount(2); n != unreachable {
		t.Errorf("Unreachable called after Close")
	}
	for _, m := range ms {
		m.srv.Close()
	}
	goleak.VerifyNone(t, ignore)
}

// A member that learns its group closes the streams of other groups, which
// are refused from then on; a sender that learns the same group is
// accepted again.
func TestTransport_SetGroup(t *testing.T) {
	g1, g2 := argent.DatasetID{1}, argent.DatasetID{2}
	a := newMember(t, 1, func(c *raftnet.Config) { c.Group = g1 })
	b := newMember(t, 2, func(c *raftnet.Config) { c.Group = argent.DatasetID{} })
	a.tr.SetPeer(2, b.addr)
	a.tr.Send([]*raftpb.Message{msg(1, 2, 1)})
	waitFor(t, "the first message", func() bool { return b.got.len() == 1 })

	b.tr.SetGroup(g2)
	waitFor(t, "the refusal", func() bool {
		a.tr.Send([]*raftpb.Message{msg(1, 2, 2)})
		time.Sleep(time.Millisecond)
		return a.rep.unreachableCount(2) > 0 && len(b.logs.matching("stream refused", "dataset mismatch")) > 0
	})

	a.tr.SetGroup(g2)
	waitFor(t, "messages in the new group", func() bool {
		a.tr.Send([]*raftpb.Message{msg(1, 2, 3)})
		time.Sleep(time.Millisecond)
		return slices.Contains(b.got.from(1), 3)
	})
	if got := b.got.from(1); !slices.IsSorted(got) {
		t.Errorf("messages out of order: %v", got)
	}
}
