package negfilter_test

import (
	"sync/atomic"
	"testing"

	"github.com/argent-kv/argent/internal/negfilter"
)

// benchFilter is a filter of a million keys at the replica's sizing.
func benchFilter(b *testing.B) *negfilter.Filter {
	b.Helper()
	const n = 1_000_000
	return mustFilter(b, negfilter.ExpectedKeys(n), n, 1)
}

func BenchmarkFilter_MayContain(b *testing.B) {
	f := benchFilter(b)
	for _, bc := range []struct {
		name string
		key  func(int) []byte
	}{
		{name: "Present", key: presentKey},
		{name: "Absent", key: absentKey},
	} {
		b.Run(bc.name, func(b *testing.B) {
			keys := make([][]byte, 1024)
			for i := range keys {
				keys[i] = bc.key(i * 997)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				f.MayContain(keys[i%len(keys)])
			}
		})
	}
}

// BenchmarkFilter_MayContainParallel reads from every core, alone and while
// one goroutine adds keys as fast as it can (a log applier at full speed),
// which is the case that decides between a RWMutex and atomic bit updates.
func BenchmarkFilter_MayContainParallel(b *testing.B) {
	for _, bc := range []struct {
		name   string
		adding bool
	}{
		{name: "ReadOnly"},
		{name: "WhileAdding", adding: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := benchFilter(b)
			var stop atomic.Bool
			done := make(chan struct{})
			var adds int
			if bc.adding {
				go func() {
					defer close(done)
					for ; !stop.Load(); adds++ {
						f.Add(absentKey(adds))
					}
				}()
			} else {
				close(done)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := absentKey(int(2e6))
				for pb.Next() {
					f.MayContain(key)
				}
			})
			b.StopTimer()
			stop.Store(true)
			<-done
			if bc.adding {
				b.ReportMetric(float64(adds)/b.Elapsed().Seconds(), "adds/s")
			}
		})
	}
}

func BenchmarkFilter_Add(b *testing.B) {
	f := negfilter.New(negfilter.ExpectedKeys(1_000_000), negfilter.DefaultFPRate)
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = presentKey(i)
	}
	for i := 0; b.Loop(); i++ {
		f.Add(keys[i%len(keys)])
	}
}

func BenchmarkFilter_Stats(b *testing.B) {
	f := benchFilter(b)
	for b.Loop() {
		f.Stats()
	}
}

func BenchmarkFilter_Marshal(b *testing.B) {
	f := benchFilter(b)
	var n int
	for b.Loop() {
		buf, err := f.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		n = len(buf)
	}
	b.SetBytes(int64(n))
}

func BenchmarkDecode(b *testing.B) {
	buf := mustMarshal(b, benchFilter(b))
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := negfilter.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
