package group

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent"
)

func TestProposal_AlarmRoundTrip(t *testing.T) {
	for _, raise := range []bool{true, false} {
		p := proposal{kind: kindAlarm, proposer: 2, seq: 7, time: 99, alarm: alarmChange{member: 300, raise: raise}}
		b := p.encode()
		if !isAlarm(b) {
			t.Fatalf("isAlarm(%x) = false", b)
		}
		got, err := decodeProposal(b)
		if err != nil || got.kind != kindAlarm || got.proposer != 2 || got.seq != 7 || got.alarm != p.alarm {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", p, got, err)
		}
	}
	w := proposal{kind: kindWrite, batches: []argent.Batch{{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k")}}}}}
	if isAlarm(w.encode()) {
		t.Fatal("isAlarm of a write proposal = true")
	}
}

func TestProposal_AlarmCorrupt(t *testing.T) {
	header := (&proposal{kind: kindAlarm, proposer: 1, seq: 1}).encode()
	header = header[:len(header)-2] // without action and member
	tests := []struct {
		name string
		tail []byte
	}{
		{name: "Empty"},
		{name: "NoMember", tail: []byte{1}},
		{name: "BadAction", tail: []byte{2, 5}},
		{name: "TrailingBytes", tail: []byte{1, 5, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append(slices.Clone(header), tc.tail...)
			if p, err := decodeProposal(b); !errors.Is(err, argent.ErrCorruption) {
				t.Fatalf("decode(%x) = %+v, %v; want ErrCorruption", b, p, err)
			}
		})
	}
}

func TestAlarms_Record(t *testing.T) {
	tests := []struct {
		name string
		a    alarms
	}{
		{name: "None", a: alarms{at: 12}},
		{name: "One", a: alarms{raised: []uint64{3}, at: 40}},
		{name: "Several", a: alarms{raised: []uint64{1, 5, 1000}, at: 1 << 40}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAlarms(tc.a.encode())
			if err != nil || got.at != tc.a.at || !slices.Equal(got.raised, tc.a.raised) {
				t.Fatalf("decode(encode(%+v)) = %+v, %v", tc.a, got, err)
			}
		})
	}
	if a, err := decodeAlarms(nil); err != nil || len(a.raised) != 0 || a.at != 0 {
		t.Fatalf("no record = %+v, %v; want none raised", a, err)
	}
	for _, bad := range [][]byte{{9, 1, 0}, {alarmsVersion}, {alarmsVersion, 1, 5, 1}, {alarmsVersion, 1, 1, 2, 0}} {
		if a, err := decodeAlarms(bad); !errors.Is(err, argent.ErrCorruption) {
			t.Errorf("decode(%x) = %+v, %v; want ErrCorruption", bad, a, err)
		}
	}
}

// A snapshot without alarms keeps the first format, which members built
// before alarms read; one with alarms carries them.
func TestSnapshotData_Formats(t *testing.T) {
	book := memberBook{1: "a:1", 2: "b:2"}
	tests := []struct {
		name        string
		raised      []uint64
		wantVersion byte
	}{
		{name: "NoAlarms", wantVersion: snapshotVersion},
		{name: "Alarms", raised: []uint64{2}, wantVersion: snapshotVersionAlarms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &Group{cfg: Config{ID: 7}, book: book, alarms: alarms{raised: tc.raised}}
			data := g.snapshotData()
			if data[0] != tc.wantVersion {
				t.Fatalf("version %d, want %d", data[0], tc.wantVersion)
			}
			c, err := decodeSnapshotData(data)
			if err != nil || c.from != 7 || !slices.Equal(c.alarms, tc.raised) || len(c.book) != 2 || c.book[2] != "b:2" {
				t.Fatalf("decoded %+v, %v", c, err)
			}
		})
	}
	// What a build without alarms wrote.
	old := append(binary.AppendUvarint([]byte{1}, 3), book.encode()...)
	if c, err := decodeSnapshotData(old); err != nil || c.from != 3 || c.alarms != nil || c.book[1] != "a:1" {
		t.Fatalf("first-format snapshot decoded as %+v, %v", c, err)
	}
	for _, bad := range [][]byte{{3, 1}, {snapshotVersionAlarms, 1, 9}, {1}} {
		if c, err := decodeSnapshotData(bad); !errors.Is(err, argent.ErrCorruption) {
			t.Errorf("decode(%x) = %+v, %v; want ErrCorruption", bad, c, err)
		}
	}
}

// applyAlarm follows the log: entries at or before the recorded position
// are not applied again, an alarm of a member not in the group is ignored,
// and a removal drops the removed member's alarm.
func TestGroup_ApplyAlarm(t *testing.T) {
	g := &Group{cfg: Config{Logger: slog.New(slog.DiscardHandler)}, conf: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}
	entry := func(i, member uint64, raise bool) *raftpb.Entry {
		p := proposal{kind: kindAlarm, proposer: member, seq: i, alarm: alarmChange{member: member, raise: raise}}
		return &raftpb.Entry{Index: new(i), Term: new(uint64(1)), Data: p.encode()}
	}
	steps := []struct {
		name   string
		do     func() error
		raised []uint64
		at     uint64
	}{
		{name: "Raise", do: func() error { return g.applyAlarm(entry(10, 2, true)) }, raised: []uint64{2}, at: 10},
		{name: "RaiseAgain", do: func() error { return g.applyAlarm(entry(11, 2, true)) }, raised: []uint64{2}, at: 10},
		{name: "Another", do: func() error { return g.applyAlarm(entry(12, 3, true)) }, raised: []uint64{2, 3}, at: 12},
		{name: "ReplayedClear", do: func() error { return g.applyAlarm(entry(9, 2, false)) }, raised: []uint64{2, 3}, at: 12},
		{name: "NotAMember", do: func() error { return g.applyAlarm(entry(13, 4, true)) }, raised: []uint64{2, 3}, at: 12},
		{name: "Clear", do: func() error { return g.applyAlarm(entry(14, 3, false)) }, raised: []uint64{2}, at: 14},
		{name: "ReplayedRemoval", do: func() error { g.dropAlarm(2, 14); return nil }, raised: []uint64{2}, at: 14},
		{name: "Removal", do: func() error { g.dropAlarm(2, 15); return nil }, at: 15},
		{name: "Write", do: func() error {
			p := proposal{kind: kindWrite, batches: []argent.Batch{{Ops: []argent.Op{{Type: argent.OpPut, Key: []byte("k")}}}}}
			return g.applyAlarm(&raftpb.Entry{Index: new(uint64(16)), Data: p.encode()})
		}, at: 15},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !slices.Equal(g.alarms.raised, st.raised) || g.alarms.at != st.at {
			t.Fatalf("%s: alarms %v at %d, want %v at %d", st.name, g.alarms.raised, g.alarms.at, st.raised, st.at)
		}
		err := g.alarmError()
		if (err == nil) != (len(st.raised) == 0) {
			t.Fatalf("%s: alarmError() = %v with alarms %v", st.name, err, st.raised)
		}
	}
}
