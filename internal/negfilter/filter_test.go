package negfilter_test

import (
	"math"
	"sync"
	"testing"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/negfilter"
)

func argentIndex(i uint64) argent.Index { return argent.Index(i) }

func TestExpectedKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		count uint64
		want  uint
	}{
		{name: "Empty", count: 0, want: negfilter.MinExpectedKeys},
		{name: "Small", count: 100, want: negfilter.MinExpectedKeys},
		{name: "AtMinimum", count: 683, want: 1024},
		{name: "HalfAgain", count: 100_000, want: 150_000},
		{name: "Million", count: 1_000_000, want: 1_500_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := negfilter.ExpectedKeys(tc.count); got != tc.want {
				t.Errorf("ExpectedKeys(%d) = %d, want %d", tc.count, got, tc.want)
			}
		})
	}
}

func TestNew_Parameters(t *testing.T) {
	for _, tc := range []struct {
		name         string
		expected     uint
		fpRate       float64
		wantExpected uint
		wantFP       float64
		wantK        uint
	}{
		{name: "Default", expected: 1000, fpRate: 0.01, wantExpected: 1000, wantFP: 0.01, wantK: 7},
		{name: "Tighter", expected: 1000, fpRate: 0.001, wantExpected: 1000, wantFP: 0.001, wantK: 10},
		{name: "ZeroKeys", expected: 0, fpRate: 0.01, wantExpected: 1, wantFP: 0.01, wantK: 7},
		{name: "ZeroRate", expected: 10, fpRate: 0, wantExpected: 10, wantFP: negfilter.DefaultFPRate, wantK: 7},
		{name: "RateOne", expected: 10, fpRate: 1, wantExpected: 10, wantFP: negfilter.DefaultFPRate, wantK: 7},
		{name: "RateNaN", expected: 10, fpRate: math.NaN(), wantExpected: 10, wantFP: negfilter.DefaultFPRate, wantK: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := negfilter.New(tc.expected, tc.fpRate)
			if got := f.ExpectedKeys(); got != tc.wantExpected {
				t.Errorf("ExpectedKeys = %d, want %d", got, tc.wantExpected)
			}
			if got := f.TargetFPRate(); got != tc.wantFP {
				t.Errorf("TargetFPRate = %v, want %v", got, tc.wantFP)
			}
			if got := f.Hashes(); got != tc.wantK {
				t.Errorf("Hashes = %d, want %d", got, tc.wantK)
			}
			// m/n = -ln p / ln² 2 bits per key.
			wantBits := math.Ceil(-float64(tc.wantExpected) * math.Log(tc.wantFP) / (math.Ln2 * math.Ln2))
			if got := float64(f.Bits()); got != wantBits {
				t.Errorf("Bits = %v, want %v", got, wantBits)
			}
			if f.Index() != 0 || f.Count() != 0 {
				t.Errorf("new filter has index %d, count %d; want 0, 0", f.Index(), f.Count())
			}
		})
	}
}

func TestFilter_AddMayContain(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{
		{name: "One", keys: [][]byte{[]byte("a")}},
		{name: "EmptyKey", keys: [][]byte{{}}},
		{name: "Binary", keys: [][]byte{{0}, {0xff, 0}, {0, 0, 0, 1}}},
		{name: "Long", keys: [][]byte{make([]byte, 1024)}},
		{name: "Many", keys: func() [][]byte {
			var ks [][]byte
			for i := range 5000 {
				ks = append(ks, presentKey(i))
			}
			return ks
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := negfilter.New(uint(len(tc.keys)), negfilter.DefaultFPRate)
			for _, k := range tc.keys {
				f.Add(k)
			}
			for _, k := range tc.keys {
				if !f.MayContain(k) {
					t.Errorf("MayContain(%q) = false after Add", k)
				}
			}
			if got := f.Count(); got != uint64(len(tc.keys)) {
				t.Errorf("Count = %d, want %d", got, len(tc.keys))
			}
		})
	}
}

func TestFilter_Count(t *testing.T) {
	f := negfilter.New(100, 0.01)
	for range 3 {
		f.Add([]byte("same"))
	}
	f.Add([]byte("other"))
	if got := f.Count(); got != 4 {
		t.Errorf("Count = %d, want 4 (re-adds count)", got)
	}
	if got := f.Stats().Keys; math.Abs(got-2) > 0.5 {
		t.Errorf("Stats().Keys = %.2f, want about 2 (re-adds do not)", got)
	}
}

func TestFilter_Index(t *testing.T) {
	f := negfilter.New(100, 0.01)
	for _, i := range []argent.Index{7, 9, 3} {
		f.SetIndex(i)
		if got := f.Index(); got != i {
			t.Errorf("Index = %d after SetIndex(%d)", got, i)
		}
	}
}

// TestFilter_FalsePositives checks the sizing's promise: over 100,000 present and
// 100,000 absent keys there is no false negative and at least 99% of the
// absent keys are answered by the filter.
func TestFilter_FalsePositives(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name     string
		expected uint
		maxFP    float64
	}{
		// The sizing a replica builds with: half again as many keys.
		{name: "DefaultSizing", expected: negfilter.ExpectedKeys(n), maxFP: 0.01},
		// Filled exactly to its sizing: about the target itself.
		{name: "FullToSizing", expected: n, maxFP: 0.0115},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFilter(t, tc.expected, n, 1)
			for i := range n {
				if !f.MayContain(presentKey(i)) {
					t.Fatalf("false negative: %q", presentKey(i))
				}
			}
			fp := 0
			for i := range n {
				if f.MayContain(absentKey(i)) {
					fp++
				}
			}
			rate := float64(fp) / n
			est := f.EstimatedFPRate()
			t.Logf("expected keys %d: %d of %d absent keys pass (%.3f%%), estimated %.3f%%, %.1f bits/key",
				tc.expected, fp, n, 100*rate, 100*est, float64(f.Bits())/n)
			if rate > tc.maxFP {
				t.Errorf("false-positive rate %.4f, want <= %.4f", rate, tc.maxFP)
			}
			if math.Abs(rate-est) > 0.5*est+0.001 {
				t.Errorf("estimated rate %.4f is far from measured %.4f", est, rate)
			}
		})
	}
}

func TestFilter_NeedsRebuild(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expected uint
		keys     int
		want     bool
	}{
		{name: "Empty", expected: 10_000, keys: 0, want: false},
		{name: "BuiltWithHeadroom", expected: negfilter.ExpectedKeys(10_000), keys: 10_000, want: false},
		{name: "AtSizing", expected: 10_000, keys: 9_000, want: false},
		{name: "PastSizing", expected: 10_000, keys: 11_000, want: true},
		{name: "FarPastSizing", expected: 10_000, keys: 40_000, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFilter(t, tc.expected, tc.keys, 1)
			s := f.Stats()
			if got := f.NeedsRebuild(); got != tc.want {
				t.Errorf("NeedsRebuild = %v, want %v (stats %+v)", got, tc.want, s)
			}
		})
	}
}

func TestFilter_NeedsRebuildNotForReAdds(t *testing.T) {
	f := mustFilter(t, negfilter.ExpectedKeys(10_000), 10_000, 1)
	for range 10 { // every key overwritten ten times: no new keys
		for i := range 10_000 {
			f.Add(presentKey(i))
		}
	}
	if f.NeedsRebuild() {
		t.Errorf("NeedsRebuild = true after re-adding the same keys (count %d, stats %+v)", f.Count(), f.Stats())
	}
}

func TestFilter_Stats(t *testing.T) {
	f := negfilter.New(1000, 0.01)
	if s := f.Stats(); s.BitsSet != 0 || s.FillRatio != 0 || s.FPRate != 0 || s.Keys != 0 {
		t.Errorf("empty filter stats = %+v, want zeros", s)
	}
	for i := range 1000 {
		f.Add(presentKey(i))
	}
	s := f.Stats()
	if s.Bits != f.Bits() || s.Hashes != f.Hashes() {
		t.Errorf("Stats m, k = %d, %d; want %d, %d", s.Bits, s.Hashes, f.Bits(), f.Hashes())
	}
	// At its sizing a Bloom filter is about half full.
	if s.FillRatio < 0.45 || s.FillRatio > 0.55 {
		t.Errorf("FillRatio = %.3f, want about 0.5", s.FillRatio)
	}
	if math.Abs(s.Keys-1000) > 50 {
		t.Errorf("Keys = %.1f, want about 1000", s.Keys)
	}
}

// TestFilter_Concurrent runs readers, the applier and encoders at once (run
// with -race): a key whose Add returned is never missed, and an encoding
// never claims an index whose keys it lacks.
func TestFilter_Concurrent(t *testing.T) {
	const n = 5_000
	f := negfilter.New(n, 0.01)
	var added sync.WaitGroup
	added.Add(1)
	var progress [n]chan struct{}
	for i := range progress {
		progress[i] = make(chan struct{})
	}
	go func() { // the applier: key i is present from index i+1
		defer added.Done()
		for i := range n {
			f.Add(presentKey(i))
			f.SetIndex(argent.Index(i + 1))
			close(progress[i])
		}
	}()
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; i < n; i += 4 {
				<-progress[i]
				if !f.MayContain(presentKey(i)) {
					t.Errorf("false negative for key %d after its Add", i)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			b := mustMarshal(t, f)
			g, err := negfilter.Decode(b)
			if err != nil {
				t.Errorf("Decode: %v", err)
				return
			}
			for i := range int(g.Index()) {
				if !g.MayContain(presentKey(i)) {
					t.Errorf("encoding at index %d lacks key %d", g.Index(), i)
					return
				}
			}
		}
	}()
	added.Wait()
	wg.Wait()
}
