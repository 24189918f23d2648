package group

import (
	"encoding/binary"
	"fmt"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/wire"
)

// proposalVersion is the format version of a proposal, the data of a normal
// Raft entry. It is the first byte of every proposal.
const proposalVersion = 1

// The kinds of proposal.
const (
	kindWrite = 1 // client batches merged into one argent entry
	kindInit  = 2 // the dataset ID of a new group
	kindAlarm = 3 // a member's disk alarm raised or cleared (alarm.go)
)

// proposal is what one normal Raft entry carries: the client batches a
// member merged, with the commit time it chose, a new group's dataset ID,
// or a change of a member's disk alarm. The proposer and its sequence
// number let the proposing member find the writers waiting for the entry
// when it applies it.
type proposal struct {
	kind     byte
	proposer uint64
	seq      uint64
	time     int64 // Unix ns; each member keeps it no earlier than the last entry's
	batches  []argent.Batch
	dataset  argent.DatasetID
	alarm    alarmChange
}

// alarmChange raises or clears the disk alarm of a member.
type alarmChange struct {
	member uint64
	raise  bool
}

// isAlarm reports whether b, the data of a normal Raft entry, is an alarm
// proposal, without decoding the rest (a write proposal may be large).
func isAlarm(b []byte) bool {
	return len(b) >= 2 && b[0] == proposalVersion && b[1] == kindAlarm
}

func (p *proposal) encode() []byte {
	size := 1 + 1 + 3*binary.MaxVarintLen64 + len(p.dataset)
	for i := range p.batches {
		size += binary.MaxVarintLen64 + 16 + 16*len(p.batches[i].Ops) + 16*len(p.batches[i].Conditions)
		for _, op := range p.batches[i].Ops {
			size += len(op.Key) + len(op.Value)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, proposalVersion, p.kind)
	b = binary.AppendUvarint(b, p.proposer)
	b = binary.AppendUvarint(b, p.seq)
	b = binary.AppendVarint(b, p.time)
	switch p.kind {
	case kindInit:
		b = append(b, p.dataset[:]...)
	case kindAlarm:
		raise := byte(0)
		if p.alarm.raise {
			raise = 1
		}
		b = binary.AppendUvarint(append(b, raise), p.alarm.member)
	case kindWrite:
		b = binary.AppendUvarint(b, uint64(len(p.batches)))
		for i := range p.batches {
			at := len(b)
			b = binary.AppendUvarint(b, 0) // placeholder, one byte
			b = wire.AppendBatch(b, &p.batches[i])
			b = putLen(b, at)
		}
	}
	return b
}

// putLen replaces the one-byte placeholder at b[at] with the uvarint length
// of what follows it.
func putLen(b []byte, at int) []byte {
	n := len(b) - at - 1
	var l [binary.MaxVarintLen64]byte
	ln := binary.PutUvarint(l[:], uint64(n))
	if ln == 1 {
		b[at] = l[0]
		return b
	}
	b = append(b, make([]byte, ln-1)...)
	copy(b[at+ln:], b[at+1:at+1+n])
	copy(b[at:], l[:ln])
	return b
}

func decodeProposal(b []byte) (proposal, error) {
	var p proposal
	if len(b) < 2 {
		return p, fmt.Errorf("%w: proposal of %d bytes", argent.ErrCorruption, len(b))
	}
	if b[0] != proposalVersion {
		return p, fmt.Errorf("%w: proposal format version %d; this build reads %d", argent.ErrCorruption, b[0], proposalVersion)
	}
	p.kind = b[1]
	b = b[2:]
	var ok bool
	if p.proposer, b, ok = uvarint(b); !ok {
		return p, fmt.Errorf("%w: proposal: bad proposer", argent.ErrCorruption)
	}
	if p.seq, b, ok = uvarint(b); !ok {
		return p, fmt.Errorf("%w: proposal: bad sequence number", argent.ErrCorruption)
	}
	t, n := binary.Varint(b)
	if n <= 0 {
		return p, fmt.Errorf("%w: proposal: bad time", argent.ErrCorruption)
	}
	p.time, b = t, b[n:]
	switch p.kind {
	case kindInit:
		if len(b) != len(p.dataset) {
			return p, fmt.Errorf("%w: init proposal: %d bytes of dataset ID", argent.ErrCorruption, len(b))
		}
		copy(p.dataset[:], b)
		return p, nil
	case kindAlarm:
		if len(b) < 2 || b[0] > 1 {
			return p, fmt.Errorf("%w: alarm proposal: bad action", argent.ErrCorruption)
		}
		p.alarm.raise = b[0] == 1
		if p.alarm.member, b, ok = uvarint(b[1:]); !ok || len(b) != 0 {
			return p, fmt.Errorf("%w: alarm proposal: bad member", argent.ErrCorruption)
		}
		return p, nil
	case kindWrite:
		var count uint64
		if count, b, ok = uvarint(b); !ok || count > uint64(len(b)) {
			return p, fmt.Errorf("%w: proposal: bad batch count", argent.ErrCorruption)
		}
		p.batches = make([]argent.Batch, 0, count)
		for range count {
			var l uint64
			if l, b, ok = uvarint(b); !ok || l > uint64(len(b)) {
				return p, fmt.Errorf("%w: proposal: bad batch length", argent.ErrCorruption)
			}
			batch, err := wire.DecodeBatch(b[:l])
			if err != nil {
				return p, fmt.Errorf("proposal: %w", err)
			}
			p.batches = append(p.batches, batch)
			b = b[l:]
		}
		if len(b) != 0 {
			return p, fmt.Errorf("%w: proposal: %d bytes after the last batch", argent.ErrCorruption, len(b))
		}
		return p, nil
	}
	return p, fmt.Errorf("%w: proposal of unknown kind %d", argent.ErrCorruption, p.kind)
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}
