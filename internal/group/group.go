// Package group runs the root as a Raft group of three or five members
// (go.etcd.io/raft/v3), so that the write path survives the loss of a
// minority of them.
//
// Any member takes writes. The client batches that queue at a member while
// its previous proposal is under way are merged into one proposal, one Raft
// entry; Raft forwards a follower's proposals to the leader. Every member
// applies the committed entries in order to its own store: it checks each
// client batch's conditions against the state the batches before it left,
// applies those that hold, and gives the entry the next argent index if any
// did. The outcome depends only on the log, so every member holds the same
// argent log, chain hash and dataset ID, and any of them can feed children.
// The argent index is not the Raft index: entries that apply nothing (a new
// leader's empty entry, configuration changes, merges whose batches all
// failed) take none, so the argent log stays dense.
//
// The Raft log is the member's durable record (Log fsyncs it). The store is
// committed without a sync; a round of applied entries is published once the
// Raft log's next synced write recorded its Raft index as published. The
// store remembers the Raft index of its last entry (kv.Store.Source), so a
// restarted member applies the Raft log from the entry after it, and it
// serves again once it reached the published index (Replayed).
//
// A writer is answered by the member it wrote to, once that member has
// applied the entry: the entry is then durable on a quorum, and a read at
// that member sees it.
//
// A member whose disk falls below its free-space floor raises a replicated
// disk alarm, and while any alarm is raised every member refuses writes
// (alarm.go).
package group

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/kv"
	"github.com/argent-kv/argent/internal/writeq"
)

// Peer is a member of the group: its Raft ID and its listen address.
type Peer struct {
	ID   uint64
	Addr string
}

// Log is a member's durable Raft log and hard state.
type Log interface {
	raft.Storage
	// Empty reports whether the log holds no Raft state: a member that
	// was never started.
	Empty() bool
	// Save persists one Ready's hard state, entries and snapshot, fsynced
	// when sync is set.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, sync bool) error
	// SetConfState records the configuration applied at index applied.
	SetConfState(cs *raftpb.ConfState, applied uint64) error
	// CreateSnapshot records a snapshot at index i (nil cs: the current
	// configuration); Compact then drops the entries before i.
	CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error)
	Compact(i uint64) error
	// SetMembers records the members' addresses; Members returns them.
	SetMembers(v []byte) error
	Members() ([]byte, error)
	// SetAlarms records the disk alarm state (fsynced); Alarms returns it.
	SetAlarms(v []byte) error
	Alarms() ([]byte, error)
	// SetPublished records the Raft index up to which the member serves
	// its store (durable with the next synced write when not sync);
	// Published returns it.
	SetPublished(i uint64, sync bool) error
	Published() (uint64, error)
}

// Transport carries Raft messages to the other members. Received messages
// come back through Group.Step.
type Transport interface {
	Send(msgs []*raftpb.Message) // must not block
	SetPeer(id uint64, addr string)
	RemovePeer(id uint64)
}

// Config configures a member. Zero fields take the defaults noted.
type Config struct {
	// ID is this member's Raft ID (not 0).
	ID uint64
	// Peers are the group's members at its creation, this one included.
	// A member whose Log is empty starts the group with them, unless Join
	// is set. The addresses are used on every start, for members whose
	// address no membership change gave.
	Peers []Peer
	// Join: a member whose Log is empty waits to be added to a running
	// group (AddMember at a member of it) instead of starting a new one.
	Join  bool
	Store *kv.Store
	Log   Log
	// Transport carries messages to the other members.
	Transport Transport

	// Tick is Raft's clock. Default 50 ms.
	Tick time.Duration
	// ElectionTicks is the election timeout in ticks: a follower that hears
	// nothing from the leader for between one and two of them starts an
	// election. Default 10. Heartbeats go out every tick.
	ElectionTicks int
	// MaxMergeBytes and MaxMergeBatches bound one proposal. Defaults 4 MiB
	// and 4096.
	MaxMergeBytes, MaxMergeBatches int
	// WriteTimeout bounds how long a write waits for a leader and for its
	// entry to apply. Default 5 s.
	WriteTimeout time.Duration
	// LogKeep is how many applied entries the Raft log keeps, so that a
	// member that was away catches up from the log; the log is compacted
	// past them every CompactInterval (default 10 s). Default 10,000.
	LogKeep         uint64
	CompactInterval time.Duration

	// MinFreeDisk is the floor of free bytes on the member's data disk.
	// Below it the member raises its disk alarm through the group, and
	// while any member's alarm is raised every member refuses writes
	// (*DiskAlarmError), so that Pebble never meets a full disk, after
	// which the member would have to stop. The member clears its alarm
	// once space returns. Default 0: no floor.
	MinFreeDisk uint64
	// FreeSpace returns the free bytes on the member's data disk (the
	// store's and the Raft log's). Default: the store's (kv.Store.FreeDisk,
	// one statfs).
	FreeSpace func() (uint64, error)
	// DiskCheckInterval is how often the free space is compared with
	// MinFreeDisk. Default 1 s.
	DiskCheckInterval time.Duration

	// Now returns the commit time a proposal carries. Default time.Now.
	Now func() time.Time
	// LoadSnapshot replaces the store's contents with those of the member
	// at addr (a whole snapshot transfer that sets the store's Source), for
	// a member that fell behind the leader's compacted log. Without it such
	// a member stops with an error.
	LoadSnapshot func(ctx context.Context, addr string) error
	// OnDataset, if set, is called when the member learns the group's
	// dataset ID (at its first entry).
	OnDataset func(argent.DatasetID)
	// OnCommit, if set, is called for each applied proposal of this member
	// with its number of client batches and how long they waited.
	OnCommit func(batches int, took time.Duration)
	Logger   *slog.Logger
}

func (c *Config) withDefaults() {
	if c.Tick == 0 {
		c.Tick = 50 * time.Millisecond
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.MaxMergeBytes == 0 {
		c.MaxMergeBytes = 4 << 20
	}
	if c.MaxMergeBatches == 0 {
		c.MaxMergeBatches = 4096
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.LogKeep == 0 {
		c.LogKeep = 10_000
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FreeSpace == nil && c.Store != nil {
		c.FreeSpace = c.Store.FreeDisk
	}
	if c.DiskCheckInterval == 0 {
		c.DiskCheckInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// The errors a writer may get besides the store's.
var (
	// ErrStopped: the member stopped before the write was proposed.
	ErrStopped = fmt.Errorf("group: member stopped: %w", argent.ErrUnavailable)
	// ErrNoLeader: no leader was elected within the write timeout; the
	// write was not proposed.
	ErrNoLeader = fmt.Errorf("group: no leader elected: %w", argent.ErrUnavailable)
	// ErrOutcomeUnknown: the write was proposed but did not apply within
	// the write timeout, or a new leader took over first; it may or may
	// not be applied later.
	ErrOutcomeUnknown = fmt.Errorf("group: the write was proposed but not yet committed when leadership changed or time ran out; it may or may not be applied: %w", argent.ErrUnavailable)
)

// Group is one member of a root group.
type Group struct {
	cfg Config
	rn  *raft.RawNode
	// Queue takes the client batches: Write, Submit, TrySubmit.
	*writeq.Queue

	recv    chan *raftpb.Message
	reports chan report
	reads   chan *readRequest
	ctl     chan control
	// publishc carries the applier's requests to make a round of applied
	// entries servable (see apply); publishing holds them until the Raft
	// log's next synced write. replayTo is the Published index found at
	// start: the member serves again once it applied that far.
	publishc   chan publishReq
	publishing []publishReq
	replayTo   uint64
	stopping   chan struct{}
	// book and conf are the members' addresses and Raft's configuration,
	// Run's goroutine only; removed is set once this member is removed.
	book    memberBook
	conf    *raftpb.ConfState
	removed atomic.Bool
	applyc  chan applyWork
	waits   waiters
	seq     uint64          // the last proposal's sequence number; Run's goroutine only
	runCtx  context.Context // Run's, for snapshot loads
	// seeded: the group started on a store that holds data; its log is
	// compacted as soon as its first entries apply, so that members added
	// later load a snapshot instead of replaying the log on empty stores.
	seeded bool
	// confAt is the Raft index of a membership change applied since the
	// last snapshot (0: none).
	confAt uint64
	// alarms is the group's disk alarm state as applied; diskWasLow is
	// what this member's last disk check found. Run's goroutine only.
	alarms     alarms
	diskWasLow bool
	// applied is the Raft index of the last entry the applier finished:
	// its effects on the store are durable. appliedMu guards appliedCh,
	// which is closed and replaced whenever applied moves.
	applied   atomic.Uint64
	appliedMu sync.Mutex
	appliedCh chan struct{}

	status atomic.Pointer[Status]
	failed atomic.Pointer[error]
}

type report struct {
	id       uint64
	snapshot bool // a snapshot's outcome, else the peer was unreachable
	ok       bool
}

// Status is a member's view of the group.
type Status struct {
	ID     uint64
	Leader uint64 // 0 while none is known
	Term   uint64
	State  string // "leader", "follower", "candidate", "pre-candidate"
	// Commit and Applied are Raft indexes: the highest known committed,
	// and the highest whose entry this member handed to its store.
	Commit, Applied uint64
	Members         []Peer
	// DiskAlarms are the IDs of the members whose disk alarm is raised:
	// while there are any, the group refuses writes.
	DiskAlarms []uint64
}

// New opens a member. If its Log is empty it starts a new group with
// cfg.Peers (every initial member does the same and they elect a leader);
// else it carries on from its Log and store.
func New(cfg Config) (*Group, error) {
	cfg.withDefaults()
	if cfg.ID == 0 {
		return nil, errors.New("group: member ID must not be 0")
	}
	hs, cs, err := cfg.Log.InitialState()
	if err != nil {
		return nil, fmt.Errorf("group: read raft state: %w", err)
	}
	rec, err := cfg.Log.Members()
	if err != nil {
		return nil, fmt.Errorf("group: read member addresses: %w", err)
	}
	book, err := decodeMemberBook(rec)
	if err != nil {
		return nil, err
	}
	rec, err = cfg.Log.Alarms()
	if err != nil {
		return nil, fmt.Errorf("group: read disk alarms: %w", err)
	}
	alarms, err := decodeAlarms(rec)
	if err != nil {
		return nil, err
	}
	for _, p := range cfg.Peers {
		if _, ok := book[p.ID]; !ok {
			book[p.ID] = p.Addr
		}
	}
	// The store may be ahead of the commit index the log recorded last
	// (that record is not always fsynced): Raft must not be told of
	// applied entries it does not know committed. A store loaded from a
	// snapshot holds at least the state at the snapshot's index (its
	// Source may be lower when the entries after it carried no data).
	snap, err := cfg.Log.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("group: read raft snapshot: %w", err)
	}
	applied := max(min(cfg.Store.Source(), hs.GetCommit()), snap.GetMetadata().GetIndex())
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   cfg.Log,
		Applied:                   applied,
		MaxSizePerMsg:             4 << 20,
		MaxCommittedSizePerReady:  64 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{cfg.Logger},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("group: start raft: %w", err)
	}
	g := &Group{cfg: cfg, rn: rn, Queue: writeq.New(4096),
		recv: make(chan *raftpb.Message, 4096), reports: make(chan report, 256),
		reads: make(chan *readRequest, 1024), ctl: make(chan control), applyc: make(chan applyWork, 64),
		publishc: make(chan publishReq, 1), stopping: make(chan struct{}),
		appliedCh: make(chan struct{}), book: book, conf: cs, alarms: alarms}
	g.removed.Store(!slices.Contains(cs.GetVoters(), cfg.ID) && !slices.Contains(cs.GetLearners(), cfg.ID) && len(cs.GetVoters()) > 0)
	g.waits.m = make(map[uint64]*waiter)
	g.applied.Store(applied)
	if g.replayTo, err = cfg.Log.Published(); err != nil {
		return nil, fmt.Errorf("group: read published index: %w", err)
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	// A random start keeps a restarted member's sequence numbers apart
	// from those of the proposals it made before.
	g.seq = binary.LittleEndian.Uint64(seed[:]) >> 1
	for id, addr := range book {
		if id != cfg.ID {
			cfg.Transport.SetPeer(id, addr)
		}
	}
	if cfg.Log.Empty() && !cfg.Join {
		if cfg.Store.Applied() > 0 {
			// A group started on data (a single root's, a lost group's
			// survivor's): alone, so that no member applies the new log
			// to an empty store; the others join and load a snapshot.
			if len(cfg.Peers) != 1 {
				return nil, fmt.Errorf("group: the store holds data (index %d): start a group on it with this member alone (--peers %d=ADDR), then add the others with --join and argent member add", cfg.Store.Applied(), cfg.ID)
			}
			if err := cfg.Store.ResetSource(); err != nil {
				return nil, err
			}
			g.seeded = true
		}
		peers := make([]raft.Peer, len(cfg.Peers))
		for i, p := range cfg.Peers {
			peers[i] = raft.Peer{ID: p.ID, Context: []byte(p.Addr)}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("group: start a new group: %w", err)
		}
	}
	g.setStatus(true)
	return g, nil
}

// Step hands the member a message from another member. It does not block:
// when the member is too far behind to take it, the message is dropped
// (Raft sends again).
func (g *Group) Step(m *raftpb.Message) {
	select {
	case g.recv <- m:
	default:
	}
}

// ReportUnreachable tells Raft that a message to id could not be sent.
func (g *Group) ReportUnreachable(id uint64) {
	select {
	case g.reports <- report{id: id}:
	default:
	}
}

// ReportSnapshot tells Raft whether a snapshot reached id.
func (g *Group) ReportSnapshot(id uint64, ok bool) {
	select {
	case g.reports <- report{id: id, snapshot: true, ok: ok}:
	default:
	}
}

// Status returns the member's current view of the group.
func (g *Group) Status() Status { return *g.status.Load() }

// Failed returns the error that stopped the member, if one did.
func (g *Group) Failed() error {
	if p := g.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Run drives the member until ctx ends or it fails: it ticks Raft, steps
// received messages, proposes queued batches, persists and sends what Raft
// asks, and hands committed entries to the applier. It returns nil when ctx
// ends, else the failure (the store or the log failed: the member stops
// rather than acknowledge what it could not make durable).
func (g *Group) Run(ctx context.Context) (err error) {
	ticker := time.NewTicker(g.cfg.Tick)
	defer ticker.Stop()
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		g.applyLoop()
	}()
	var held []heldRequest // queued writes not yet proposed
	var reads readBatches  // linearizable reads waiting for a read index
	g.runCtx = ctx
	defer func() {
		reads.failAll(ErrStopped)
		close(g.stopping)
		g.ackPublishes(ErrStopped)
		close(g.applyc)
		<-applied
		if err == nil {
			err = g.Failed()
		} else {
			g.fail(err)
		}
		for _, h := range held {
			h.req.Answer(0, ErrStopped)
		}
		g.waits.failAll(ErrStopped)
		g.Close(ErrStopped)
	}()
	lastSweep, lastCompact, lastDiskCheck := time.Now(), time.Now(), time.Now()
	for {
		take := g.C
		if len(held) >= g.cfg.MaxMergeBatches*4 {
			take = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			g.rn.Tick()
			if now := time.Now(); now.Sub(lastSweep) >= time.Second/4 {
				lastSweep = now
				held = g.sweep(held, now)
				reads.sweep(now.Add(-g.cfg.WriteTimeout), now.Add(-2*g.electionTimeout()))
			}
			if now := time.Now(); now.Sub(lastDiskCheck) >= g.cfg.DiskCheckInterval {
				lastDiskCheck = now
				g.checkDisk()
			}
			if now := time.Now(); now.Sub(lastCompact) >= g.cfg.CompactInterval {
				lastCompact = now
				if err := g.compact(); err != nil {
					return err
				}
			}
		case m := <-g.recv:
			g.step(m)
		more:
			for range 256 {
				select {
				case m := <-g.recv:
					g.step(m)
				default:
					break more
				}
			}
		case r := <-g.reports:
			if r.snapshot {
				st := raft.SnapshotFinish
				if !r.ok {
					st = raft.SnapshotFailure
				}
				g.rn.ReportSnapshot(r.id, st)
			} else {
				g.rn.ReportUnreachable(r.id)
			}
		case req := <-take:
			held = append(held, heldRequest{req: req, at: time.Now()})
		case rr := <-g.reads:
			reads.queue(rr)
		case c := <-g.ctl:
			c.done <- c.fn(g.rn)
		case pr := <-g.publishc:
			g.publishing = append(g.publishing, pr)
		}
		if err := g.Failed(); err != nil {
			return err
		}
		held = g.propose(held)
		reads.request(g.rn)
		for g.rn.HasReady() {
			if err := g.handleReady(&reads); err != nil {
				if ctx.Err() != nil {
					return nil // a snapshot load cut short by the stop
				}
				return err
			}
		}
		if err := g.publish(true); err != nil {
			return err
		}
		if g.seeded {
			if err := g.compactSeed(); err != nil {
				return err
			}
		}
		if g.confAt != 0 {
			if err := g.afterConfChange(); err != nil {
				return err
			}
		}
		g.setStatus(false)
	}
}

type heldRequest struct {
	req *writeq.Request
	at  time.Time
}

func (g *Group) step(m *raftpb.Message) {
	// Messages from a removed or unknown member, or stale ones, are
	// Raft's to ignore; an error here only says so.
	_ = g.rn.Step(m)
}

// propose drains the queue into held and, while a leader is known, proposes
// held requests in merges within the limits. What Raft drops (no leader,
// a leadership transfer) stays held for the next round.
func (g *Group) propose(held []heldRequest) []heldRequest {
drain:
	for len(held) < g.cfg.MaxMergeBatches*4 {
		select {
		case req := <-g.C:
			held = append(held, heldRequest{req: req, at: time.Now()})
		default:
			break drain
		}
	}
	if err := g.refusal(len(held)); err != nil {
		for _, h := range held {
			h.req.Answer(0, err)
		}
		return held[:0]
	}
	st := g.rn.BasicStatus()
	if st.Lead == raft.None || len(held) == 0 {
		return held
	}
	for len(held) > 0 {
		n, size := 0, 0
		for n < len(held) && n < g.cfg.MaxMergeBatches && (n == 0 || size+held[n].req.Size <= g.cfg.MaxMergeBytes) {
			size += held[n].req.Size
			n++
		}
		g.seq++
		p := proposal{kind: kindWrite, proposer: g.cfg.ID, seq: g.seq, time: g.cfg.Now().UnixNano(),
			batches: make([]argent.Batch, n)}
		reqs := make([]*writeq.Request, n)
		for i := range n {
			p.batches[i] = held[i].req.Batch
			reqs[i] = held[i].req
		}
		g.waits.add(g.seq, &waiter{reqs: reqs, term: st.GetTerm(), at: held[0].at})
		if err := g.rn.Propose(p.encode()); err != nil {
			g.waits.take(g.seq)
			return held
		}
		held = held[n:]
	}
	return held[:0:0]
}

// refusal is why the member proposes no writes now, nil when it does: it
// was removed, or a disk alarm is raised. Nothing is held: nil.
func (g *Group) refusal(held int) error {
	switch {
	case held == 0:
		return nil
	case g.removed.Load():
		return ErrRemoved
	}
	return g.alarmError()
}

// compact keeps the Raft snapshot at the applied point and drops the log's
// entries older than the last LogKeep applied ones. Their effects are
// durable in the store, so only a member that falls further behind needs
// them; it gets the snapshot instead, whose index is never below the
// compaction point.
func (g *Group) compact() error {
	at, err := g.snapshot()
	if err != nil || at < g.cfg.LogKeep {
		return err
	}
	first, err := g.cfg.Log.FirstIndex()
	if err != nil || at-g.cfg.LogKeep <= first {
		return err
	}
	if err := g.cfg.Log.Compact(at - g.cfg.LogKeep); err != nil {
		return fmt.Errorf("group: compact raft log at %d: %w", at-g.cfg.LogKeep, err)
	}
	return nil
}

// snapshot moves the Raft snapshot up to the applied point (the Raft
// index whose effects the store holds durably) and returns that point. A
// snapshot carries metadata only (see installSnapshot), so it is cheap; a
// fresh one matters after a membership change, since a new member ignores a
// snapshot from before it was added.
func (g *Group) snapshot() (uint64, error) {
	// After a snapshot load the store may be ahead of the Raft log, which
	// only reaches the snapshot's index: go no further than Raft.
	at := min(g.applied.Load(), g.rn.BasicStatus().Applied)
	cur, err := g.cfg.Log.Snapshot()
	if err != nil {
		return 0, fmt.Errorf("group: read raft snapshot: %w", err)
	}
	if at <= cur.GetMetadata().GetIndex() {
		return at, nil
	}
	// The store publishes without syncing (see apply): make it hold the
	// state at the snapshot's index durably before the snapshot says so.
	if err := g.cfg.Store.Sync(); err != nil {
		return 0, fmt.Errorf("group: sync the store before a raft snapshot: %w", err)
	}
	if _, err := g.cfg.Log.CreateSnapshot(at, nil, g.snapshotData()); err != nil {
		return 0, fmt.Errorf("group: snapshot raft log at %d: %w", at, err)
	}
	return at, nil
}

// afterConfChange takes a new snapshot once the store applied past the
// last membership change, so that a member just added can load it.
func (g *Group) afterConfChange() error {
	at, err := g.snapshot()
	if err == nil && at >= g.confAt {
		g.confAt = 0
	}
	return err
}

// compactSeed compacts a seeded group's log at its first applied entries.
func (g *Group) compactSeed() error {
	at, err := g.snapshot()
	if err != nil || at == 0 {
		return err
	}
	g.seeded = false
	g.cfg.Logger.Info("root group started on existing data; members added later load a snapshot", "applied", g.cfg.Store.Applied())
	if err := g.cfg.Log.Compact(at); err != nil {
		return fmt.Errorf("group: compact raft log at %d: %w", at, err)
	}
	return nil
}

// electionTimeout is the shortest time a follower waits for the leader.
func (g *Group) electionTimeout() time.Duration {
	return time.Duration(g.cfg.ElectionTicks) * g.cfg.Tick
}

// The formats of a Raft snapshot's data, its first byte. Version 1 holds
// the member that made it and the members' addresses; version 2 adds the
// raised disk alarms before the addresses. Version 2 is written only while
// an alarm is raised, so that members built before alarms existed still
// read the snapshots of a group that has none.
const (
	snapshotVersion       = 1
	snapshotVersionAlarms = 2
)

// snapshotData is what a Raft snapshot carries: a format version, the
// member that made it, the raised disk alarms and the members' addresses.
// The dataset itself travels another way (installSnapshot). The alarms are
// those applied up to the last entry handed to the applier, at or past the
// snapshot's index; a member that installs the snapshot applies the
// entries after its index again, which leaves the same alarms.
func (g *Group) snapshotData() []byte {
	if len(g.alarms.raised) == 0 {
		b := binary.AppendUvarint([]byte{snapshotVersion}, g.cfg.ID)
		return append(b, g.book.encode()...)
	}
	b := binary.AppendUvarint([]byte{snapshotVersionAlarms}, g.cfg.ID)
	b = appendIDs(b, g.alarms.raised)
	return append(b, g.book.encode()...)
}

// snapshotContents is what snapshotData holds.
type snapshotContents struct {
	from   uint64
	alarms []uint64
	book   memberBook
}

func decodeSnapshotData(data []byte) (snapshotContents, error) {
	var c snapshotContents
	if len(data) < 2 || (data[0] != snapshotVersion && data[0] != snapshotVersionAlarms) {
		return c, fmt.Errorf("%w: unknown data format", argent.ErrCorruption)
	}
	version := data[0]
	from, rest, ok := uvarint(data[1:])
	if !ok {
		return c, fmt.Errorf("%w: bad member", argent.ErrCorruption)
	}
	c.from = from
	if version == snapshotVersionAlarms {
		var err error
		if c.alarms, rest, err = decodeIDs(rest); err != nil {
			return c, fmt.Errorf("disk alarms: %w", err)
		}
	}
	book, err := decodeMemberBook(rest)
	if err != nil {
		return c, err
	}
	c.book = book
	return c, nil
}

// installSnapshot loads the store from the leader, for a member that fell
// behind the compacted log. It blocks the member's loop while the transfer
// runs (the member is a follower that cannot help the group meanwhile);
// entries handed to the applier before are applied first.
func (g *Group) installSnapshot(snap *raftpb.Snapshot) error {
	done := make(chan struct{})
	g.sendApply(applyWork{barrier: done})
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case pr := <-g.publishc:
			if err := g.publishNow(pr); err != nil {
				return err
			}
		}
	}
	if err := g.Failed(); err != nil {
		return err
	}
	meta := snap.GetMetadata()
	contents, err := decodeSnapshotData(snap.GetData())
	if err != nil {
		return fmt.Errorf("group: raft snapshot at %d: %w", meta.GetIndex(), err)
	}
	from := contents.from
	for id, addr := range contents.book {
		if g.book[id] == "" {
			g.book[id] = addr
		}
	}
	lead := g.rn.BasicStatus().Lead
	addr := g.book[lead]
	if addr == "" {
		addr = g.book[from]
	}
	if g.cfg.LoadSnapshot == nil || addr == "" {
		return fmt.Errorf("group: this member is behind the group's compacted log (raft index %d) and cannot load a snapshot", meta.GetIndex())
	}
	g.cfg.Logger.Info("loading a snapshot from the group", "raft_index", meta.GetIndex(), "from", addr)
	if err := g.cfg.LoadSnapshot(g.runCtx, addr); err != nil {
		return fmt.Errorf("group: load snapshot of raft index %d from %s: %w", meta.GetIndex(), addr, err)
	}
	g.conf = meta.GetConfState()
	for id := range g.book {
		if !slices.Contains(g.conf.GetVoters(), id) && !slices.Contains(g.conf.GetLearners(), id) {
			delete(g.book, id)
		}
	}
	for id, a := range g.book {
		if id != g.cfg.ID {
			g.cfg.Transport.SetPeer(id, a)
		}
	}
	if err := g.cfg.Log.SetMembers(g.book.encode()); err != nil {
		return fmt.Errorf("group: record member addresses: %w", err)
	}
	// The member missed the alarm entries before the snapshot: it takes
	// the alarms the snapshot carries, and applies those after its index.
	g.alarms = alarms{at: meta.GetIndex()}
	for _, id := range contents.alarms {
		if g.isMember(id) {
			g.alarms.set(id, true)
		}
	}
	if err := g.saveAlarms(); err != nil {
		return err
	}
	if ds := g.cfg.Store.Dataset(); !ds.IsZero() && g.cfg.OnDataset != nil {
		g.cfg.OnDataset(ds)
	}
	g.setApplied(max(meta.GetIndex(), g.cfg.Store.Source()))
	g.setStatus(true)
	return nil
}

// sweep answers the held requests that waited for a leader longer than
// the write timeout, and the proposals that waited that long to apply.
func (g *Group) sweep(held []heldRequest, now time.Time) []heldRequest {
	cutoff := now.Add(-g.cfg.WriteTimeout)
	kept := held[:0]
	for _, h := range held {
		if h.at.Before(cutoff) {
			h.req.Answer(0, ErrNoLeader)
			continue
		}
		kept = append(kept, h)
	}
	for _, w := range g.waits.olderThan(cutoff) {
		w.answer(nil, ErrOutcomeUnknown)
	}
	return kept
}

// handleReady persists, sends and hands over what one Ready holds. A
// leader sends before it persists (its own acknowledgement counts only once
// the entries are durable, in Advance), so that the followers' disks work
// in parallel with its own; a follower sends after, as its answers promise
// durability.
func (g *Group) handleReady(reads *readBatches) error {
	rd := g.rn.Ready()
	for _, rs := range rd.ReadStates {
		reads.answer(rs)
	}
	leader := g.rn.BasicStatus().RaftState == raft.StateLeader
	if rd.SoftState != nil && rd.SoftState.RaftState == raft.StateLeader && g.cfg.Store.Dataset().IsZero() {
		g.proposeInit()
	}
	if leader {
		g.cfg.Transport.Send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		// The store must hold the snapshot's state before the log says it
		// does: a crash in between then finds the old log and a newer
		// store, which the log's replay skips over.
		if err := g.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// The applier's publish requests ride on this write's fsync when there
	// is one; else Run syncs them on their own after the Ready loop.
	ride := len(g.publishing) > 0 && (!raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 || !raft.IsEmptySnap(rd.Snapshot))
	if ride {
		if err := g.publish(false); err != nil {
			return err
		}
	}
	if err := g.cfg.Log.Save(rd.HardState, rd.Entries, rd.Snapshot, rd.MustSync || ride); err != nil {
		return fmt.Errorf("group: persist raft log: %w", err)
	}
	if ride {
		g.ackPublishes(nil)
	}
	if !leader {
		g.cfg.Transport.Send(rd.Messages)
	}
	if len(rd.CommittedEntries) > 0 {
		// Membership changes and disk alarms are applied here, in log
		// order, and recorded before the applier gets the entries after
		// them.
		alarmsAt := g.alarms.at
		for _, e := range rd.CommittedEntries {
			if err := g.applyConfChange(e); err != nil {
				return err
			}
			if err := g.applyAlarm(e); err != nil {
				return err
			}
		}
		if g.alarms.at != alarmsAt {
			if err := g.saveAlarms(); err != nil {
				return err
			}
		}
		g.sendApply(applyWork{ents: rd.CommittedEntries})
	}
	g.rn.Advance(rd)
	return nil
}

// sendApply hands work to the applier. While the applier's queue is full it
// keeps answering the applier's publish requests, which the applier may be
// waiting on.
func (g *Group) sendApply(w applyWork) {
	for {
		select {
		case g.applyc <- w:
			return
		case pr := <-g.publishc:
			// An error here fails the member; the next round returns it.
			if err := g.publishNow(pr); err != nil {
				g.fail(err)
			}
		}
	}
}

// publish records the highest Raft index the applier asks to serve. With
// sync it also makes it durable and answers the requests; without, the
// caller's next synced write does, and the caller answers them
// (ackPublishes).
func (g *Group) publish(sync bool) error {
	if len(g.publishing) == 0 {
		return nil
	}
	var top uint64
	for _, pr := range g.publishing {
		top = max(top, pr.raft)
	}
	if err := g.cfg.Log.SetPublished(top, sync); err != nil {
		err = fmt.Errorf("group: record published index %d: %w", top, err)
		g.ackPublishes(err)
		return err
	}
	if sync {
		g.ackPublishes(nil)
	}
	return nil
}

// publishNow makes pr durable at once, with any held before it: for when
// Run cannot wait for its next write (the applier may be waiting on it).
func (g *Group) publishNow(pr publishReq) error {
	g.publishing = append(g.publishing, pr)
	return g.publish(true)
}

// ackPublishes answers the publish requests held.
func (g *Group) ackPublishes(err error) {
	for _, pr := range g.publishing {
		pr.done <- err
	}
	g.publishing = g.publishing[:0]
}

// publishReq asks Run to make the Raft index raft durable as published.
type publishReq struct {
	raft uint64
	done chan error
}

// Replayed reports whether the member applied its Raft log as far as it
// had served before it last stopped. Until then its store may be behind
// what it served, and it must not serve.
func (g *Group) Replayed() bool { return g.applied.Load() >= g.replayTo }

// proposeInit proposes a dataset ID for a new group. The first such entry
// applied sets it on every member; later ones (from leaders elected before
// it applied) are ignored.
func (g *Group) proposeInit() {
	var id argent.DatasetID
	_, _ = rand.Read(id[:])
	g.seq++
	p := proposal{kind: kindInit, proposer: g.cfg.ID, seq: g.seq, time: g.cfg.Now().UnixNano(), dataset: id}
	_ = g.rn.Propose(p.encode())
}

// applyConfChange applies a committed configuration change to Raft and
// records it in the log; other entries are the applier's.
func (g *Group) applyConfChange(e *raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var c raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &c); err != nil {
			return fmt.Errorf("group: raft entry %d: decode configuration change: %w", e.GetIndex(), err)
		}
		cc = &c
	case raftpb.EntryConfChangeV2:
		var c raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &c); err != nil {
			return fmt.Errorf("group: raft entry %d: decode configuration change: %w", e.GetIndex(), err)
		}
		cc = &c
	default:
		return nil
	}
	cs := g.rn.ApplyConfChange(cc)
	if err := g.cfg.Log.SetConfState(cs, e.GetIndex()); err != nil {
		return fmt.Errorf("group: record configuration at raft index %d: %w", e.GetIndex(), err)
	}
	g.conf = cs
	g.confAt = e.GetIndex()
	v2 := cc.AsV2()
	for _, ch := range v2.GetChanges() {
		id := ch.GetNodeId()
		switch ch.GetType() {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			// A member keeps the address its own peers list gives: it
			// may reach the others another way than they say.
			if addr := string(v2.GetContext()); addr != "" && g.book[id] == "" {
				g.book[id] = addr
			}
			if id != g.cfg.ID {
				g.cfg.Transport.SetPeer(id, g.book[id])
			} else {
				g.removed.Store(false) // a member replaying its removal and return
			}
		case raftpb.ConfChangeRemoveNode:
			delete(g.book, id)
			g.dropAlarm(id, e.GetIndex())
			if id == g.cfg.ID {
				g.removed.Store(true)
				g.cfg.Logger.Warn("this member was removed from the root group; it takes no more writes")
			} else {
				g.cfg.Transport.RemovePeer(id)
			}
		}
	}
	if err := g.cfg.Log.SetMembers(g.book.encode()); err != nil {
		return fmt.Errorf("group: record member addresses: %w", err)
	}
	g.setStatus(true)
	return nil
}

// setStatus publishes the member's view of the group when it changed, or
// always with always set (after a membership change or a disk alarm).
func (g *Group) setStatus(always bool) {
	bs := g.rn.BasicStatus()
	st := &Status{ID: g.cfg.ID, Leader: bs.Lead, Term: bs.GetTerm(), State: stateName(bs.RaftState),
		Commit: bs.GetCommit(), Applied: bs.Applied}
	if old := g.status.Load(); old != nil && old.sameAs(st) && !always {
		return
	}
	st.Members = g.book.peers(g.conf)
	st.DiskAlarms = slices.Clone(g.alarms.raised)
	g.status.Store(st)
}

// sameAs compares everything but the members and alarms, which change only
// with them.
func (s *Status) sameAs(o *Status) bool {
	return s.Leader == o.Leader && s.Term == o.Term && s.State == o.State && s.Commit == o.Commit && s.Applied == o.Applied
}

func stateName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	}
	return "follower"
}

func (g *Group) fail(err error) {
	if g.failed.CompareAndSwap(nil, &err) {
		g.cfg.Logger.Error("root group member stopped", "err", err)
	}
}
