package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
)

// Disk alarms. A member checks the free space of its disk every
// Config.DiskCheckInterval; below Config.MinFreeDisk it proposes an alarm
// entry naming itself, and once back above the floor one that clears it.
// The entries go through Raft like writes, so every member applies them in
// the same order and agrees on which alarms are raised; while any is, every
// member refuses new client writes before proposing them, and nothing
// reaches the store of the member whose disk is low, which would otherwise
// meet ENOSPC and stop. An alarm entry takes no argent index and changes
// nothing in the store: it is group bookkeeping, like a membership change,
// and it is applied on Run's goroutine with those.

// ErrDiskAlarm is wrapped by the *DiskAlarmError of a write refused while a
// member's disk alarm is raised.
var ErrDiskAlarm = errors.New("group: a member's disk has less free space than its floor")

// DiskAlarmError is a write refused because the disk alarm of one or more
// members is raised. Nothing was written; writes are taken again once every
// alarm is cleared. It wraps ErrDiskAlarm and argent.ErrUnavailable, and the
// API answers it with 507 insufficient_storage.
type DiskAlarmError struct {
	// Members are the members whose alarm is raised, by ID.
	Members []Peer
}

func (e *DiskAlarmError) Error() string {
	names := make([]string, len(e.Members))
	for i, p := range e.Members {
		names[i] = fmt.Sprint(p.ID)
		if p.Addr != "" {
			names[i] += " (" + p.Addr + ")"
		}
	}
	which := "member " + names[0]
	if len(names) > 1 {
		which = "members " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("group: write refused, nothing written: the data disk of root group %s has less free space than its floor (--min-free-disk); writes resume once space is freed there", which)
}

func (e *DiskAlarmError) Unwrap() []error { return []error{ErrDiskAlarm, argent.ErrUnavailable} }

// ErrorCode gives the API's code for the refusal.
func (e *DiskAlarmError) ErrorCode() string { return apiwire.CodeInsufficientStorage }

// alarms is the disk alarm state this member applied from the Raft log:
// the members whose alarm is raised, and the Raft index of the last entry
// that changed it. A restarted member may be handed entries again that it
// processed before it stopped (Raft replays from the store's position);
// those up to at are skipped, as the recorded state already holds them.
// Run's goroutine only.
type alarms struct {
	raised []uint64 // by ID
	at     uint64
}

// set raises or clears the alarm of member id and reports whether that
// changed anything.
func (a *alarms) set(id uint64, raise bool) bool {
	i, found := slices.BinarySearch(a.raised, id)
	switch {
	case raise && !found:
		a.raised = slices.Insert(a.raised, i, id)
	case !raise && found:
		a.raised = slices.Delete(a.raised, i, i+1)
	default:
		return false
	}
	return true
}

func (a *alarms) has(id uint64) bool {
	_, found := slices.BinarySearch(a.raised, id)
	return found
}

// alarmsVersion is the first byte of the record of the alarm state in the
// Raft log (Log.SetAlarms).
const alarmsVersion = 1

// encode is the record kept in the Raft log: the version, at, then the
// raised members.
func (a *alarms) encode() []byte {
	b := binary.AppendUvarint([]byte{alarmsVersion}, a.at)
	return appendIDs(b, a.raised)
}

func decodeAlarms(b []byte) (alarms, error) {
	var a alarms
	if len(b) == 0 {
		return a, nil // never recorded: none raised
	}
	if b[0] != alarmsVersion {
		return a, fmt.Errorf("group: disk alarm record: %w: format version %d; this build reads %d", argent.ErrCorruption, b[0], alarmsVersion)
	}
	var ok bool
	if a.at, b, ok = uvarint(b[1:]); !ok {
		return a, fmt.Errorf("group: disk alarm record: %w: bad raft index", argent.ErrCorruption)
	}
	raised, rest, err := decodeIDs(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d bytes after the members", argent.ErrCorruption, len(rest))
	}
	if err != nil {
		return a, fmt.Errorf("group: disk alarm record: %w", err)
	}
	a.raised = raised
	return a, nil
}

// appendIDs appends a count and the member IDs.
func appendIDs(b []byte, ids []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

// decodeIDs reads what appendIDs wrote, returned sorted, and the bytes
// after it.
func decodeIDs(b []byte) ([]uint64, []byte, error) {
	n, b, ok := uvarint(b)
	if !ok || n > uint64(len(b)) {
		return nil, b, fmt.Errorf("%w: bad member count", argent.ErrCorruption)
	}
	ids := make([]uint64, n)
	for i := range ids {
		if ids[i], b, ok = uvarint(b); !ok {
			return nil, b, fmt.Errorf("%w: bad member ID", argent.ErrCorruption)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), b, nil
}

// checkDisk compares the free space of the member's disk with its floor,
// and proposes raising or clearing its alarm when the state applied says
// otherwise. A proposal that Raft drops (no leader) or that is lost on the
// way is made again at the next check; one applied twice changes nothing.
func (g *Group) checkDisk() {
	if g.removed.Load() {
		return
	}
	low, free := g.diskLow()
	if low != g.diskWasLow {
		g.diskWasLow = low
		if low {
			g.cfg.Logger.Warn("data disk below its free-space floor: raising this member's disk alarm; the root group refuses writes until it clears",
				"free_bytes", free, "floor_bytes", g.cfg.MinFreeDisk)
		} else {
			g.cfg.Logger.Info("data disk back above its free-space floor: clearing this member's disk alarm", "free_bytes", free, "floor_bytes", g.cfg.MinFreeDisk)
		}
	}
	if low == g.alarms.has(g.cfg.ID) || g.rn.BasicStatus().Lead == raft.None {
		return
	}
	g.seq++
	p := proposal{kind: kindAlarm, proposer: g.cfg.ID, seq: g.seq, time: g.cfg.Now().UnixNano(),
		alarm: alarmChange{member: g.cfg.ID, raise: low}}
	_ = g.rn.Propose(p.encode())
}

// diskLow reports whether the member's disk has less free space than its
// floor. Without a floor it never is (a member restarted without one
// clears the alarm it raised before); a file system that cannot tell its
// free space passes, as it does at a single root.
func (g *Group) diskLow() (low bool, free uint64) {
	if g.cfg.MinFreeDisk == 0 {
		return false, 0
	}
	free, err := g.cfg.FreeSpace()
	if err != nil {
		return false, 0
	}
	return free < g.cfg.MinFreeDisk, free
}

// applyAlarm applies a committed alarm entry to the alarm state. An alarm
// raised for a member no longer in the group (proposed just before its
// removal) is ignored.
func (g *Group) applyAlarm(e *raftpb.Entry) error {
	if e.GetType() != raftpb.EntryNormal || e.GetIndex() <= g.alarms.at || !isAlarm(e.GetData()) {
		return nil
	}
	p, err := decodeProposal(e.GetData())
	if err != nil {
		return fmt.Errorf("group: raft entry %d: %w", e.GetIndex(), err)
	}
	id, raise := p.alarm.member, p.alarm.raise
	if raise && !g.isMember(id) {
		return nil
	}
	if !g.alarms.set(id, raise) {
		return nil
	}
	g.alarms.at = e.GetIndex()
	if raise {
		g.cfg.Logger.Warn("root group disk alarm raised: every member refuses writes until it clears", "member", id, "raised", g.alarms.raised)
	} else {
		g.cfg.Logger.Info("root group disk alarm cleared", "member", id, "raised", g.alarms.raised)
	}
	return nil
}

// dropAlarm clears the alarm of a member removed by the entry at index i.
func (g *Group) dropAlarm(id, i uint64) {
	if i > g.alarms.at && g.alarms.set(id, false) {
		g.alarms.at = i
		g.cfg.Logger.Info("root group disk alarm dropped with its member's removal", "member", id, "raised", g.alarms.raised)
	}
}

// saveAlarms records the alarm state in the Raft log, before the applier
// is handed the entries after those that changed it.
func (g *Group) saveAlarms() error {
	if err := g.cfg.Log.SetAlarms(g.alarms.encode()); err != nil {
		return fmt.Errorf("group: record disk alarms at raft index %d: %w", g.alarms.at, err)
	}
	g.setStatus(true)
	return nil
}

// alarmError is the refusal of writes while alarms are raised, nil while
// none is.
func (g *Group) alarmError() error {
	if len(g.alarms.raised) == 0 {
		return nil
	}
	e := &DiskAlarmError{Members: make([]Peer, len(g.alarms.raised))}
	for i, id := range g.alarms.raised {
		e.Members[i] = Peer{ID: id, Addr: g.book[id]}
	}
	return e
}

// isMember reports whether id is in the configuration this member applied.
func (g *Group) isMember(id uint64) bool {
	return slices.Contains(g.conf.GetVoters(), id) || slices.Contains(g.conf.GetLearners(), id)
}
