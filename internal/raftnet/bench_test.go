package raftnet_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/argent-kv/argent/internal/raftnet"
)

// BenchmarkTransport_Send sends MsgApps with one entry of each size from one
// member to another, keeping at most half a queue in flight, as Raft's
// inflight limit would.
func BenchmarkTransport_Send(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("Entry=%d", size), func(b *testing.B) {
			const queueLen = 256
			var received atomic.Int64
			a := newMember(b, 1, func(c *raftnet.Config) { c.QueueLen = queueLen })
			c := newMember(b, 2, func(c *raftnet.Config) {
				c.Deliver = func(*raftpb.Message) { received.Add(1) }
			})
			a.tr.SetPeer(2, c.addr)
			data := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				for int64(i)-received.Load() >= queueLen/2 {
					runtime.Gosched() // let the stream catch up; Send itself never waits
				}
				m := msg(1, 2, uint64(i+1))
				m.Entries = []*raftpb.Entry{{Data: data}}
				a.tr.Send([]*raftpb.Message{m})
			}
			for received.Load() < int64(b.N) {
				runtime.Gosched()
			}
			b.StopTimer()
			if st := a.tr.Stats()[2]; st.Dropped != 0 {
				b.Fatalf("%d messages dropped", st.Dropped)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
