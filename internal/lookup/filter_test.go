package lookup_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/lookup"
	"github.com/argent-kv/argent/internal/negfilter"
)

// getFilter fetches the filter over HTTP with the raw query q and decodes it.
func (f *fixture) getFilter(q string) (*negfilter.Filter, argent.Index) {
	f.t.Helper()
	resp, err := f.hs.Client().Get(f.hs.URL + lookup.FilterPath + "?" + q)
	if err != nil {
		f.t.Fatalf("GET filter: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET filter: status %d: %s", resp.StatusCode, raw)
	}
	x, err := strconv.ParseUint(resp.Header.Get(apiwire.HeaderIndex), 10, 64)
	if err != nil {
		f.t.Fatalf("GET filter: Argent-Index %q", resp.Header.Get(apiwire.HeaderIndex))
	}
	flt, err := negfilter.Decode(raw)
	if err != nil {
		f.t.Fatalf("decode filter: %v", err)
	}
	if flt.Index() != argent.Index(x) {
		f.t.Fatalf("filter index %d, Argent-Index %d", flt.Index(), x)
	}
	return flt, argent.Index(x)
}

// writeKeys puts n keys named prefix/i in batches of 500.
func (f *fixture) writeKeys(prefix string, n int) argent.Index {
	f.t.Helper()
	var last argent.Index
	for i := 0; i < n; i += 500 {
		var ops []argent.Op
		for j := i; j < min(i+500, n); j++ {
			ops = append(ops, put(fmt.Sprintf("%s/%d", prefix, j), "v"))
		}
		last = f.write(ops...)
	}
	return last
}

// checkNoFalseNegatives checks that every key of the model at x passes the
// filter, and returns the share of absent keys that pass.
func checkNoFalseNegatives(t *testing.T, flt *negfilter.Filter, want state) float64 {
	t.Helper()
	for k := range want {
		if !flt.MayContain([]byte(k)) {
			t.Fatalf("false negative: %q is present at %d but not in the filter", k, flt.Index())
		}
	}
	fp := 0
	const absent = 20_000
	for i := range absent {
		if flt.MayContain(fmt.Appendf(nil, "absent/%d", i)) {
			fp++
		}
	}
	return float64(fp) / absent
}

func TestServer_Filter(t *testing.T) {
	f := newFixture(t, nil)
	f.writeHistory()
	f.writeKeys("big", 5000)
	applied := f.write(delPrefix("big/1"), del("c")) // deleted keys may stay in, present ones must be in
	flt, x := f.getFilter("")
	if x != applied {
		t.Errorf("filter at %d, want the applied index %d", x, applied)
	}
	fp := checkNoFalseNegatives(t, flt, f.states[x])
	if fp > 0.01 {
		t.Errorf("false-positive rate %.4f, want <= 0.01", fp)
	}
	if want := negfilter.ExpectedKeys(uint64(len(f.states[x]))); flt.ExpectedKeys() != want {
		t.Errorf("filter sized for %d keys, want %d (%d present)", flt.ExpectedKeys(), want, len(f.states[x]))
	}
	t.Logf("%d keys, %d bits, false positives %.3f%%", len(f.states[x]), flt.Bits(), 100*fp)
}

func TestServer_FilterEmptyStore(t *testing.T) {
	f := newFixture(t, nil)
	f.write(put("a", "1"))
	x := f.write(del("a"))
	flt, got := f.getFilter("")
	if got != x || flt.ExpectedKeys() != negfilter.MinExpectedKeys {
		t.Errorf("filter at %d sized %d, want %d sized %d", got, flt.ExpectedKeys(), x, negfilter.MinExpectedKeys)
	}
}

// TestServer_FilterCache walks the reuse rules: the same filter while the
// index stands still, and after it moves while younger than FilterMaxAge,
// unless min_index asks for newer.
func TestServer_FilterCache(t *testing.T) {
	f := newFixture(t, &lookup.Config{FilterMaxAge: 5 * time.Second})
	a1 := f.writeKeys("k", 100)
	steps := []struct {
		name      string
		do        func()
		query     string
		wantIndex func() argent.Index
		wantBuilt uint64
	}{
		{name: "First", query: "", wantIndex: func() argent.Index { return a1 }, wantBuilt: 1},
		{name: "SameIndex", query: "", wantIndex: func() argent.Index { return a1 }, wantBuilt: 1},
		{name: "MovedButYoung", do: func() { f.write(put("new", "1")) }, query: "", wantIndex: func() argent.Index { return a1 }, wantBuilt: 1},
		{name: "MinIndexReached", query: "min_index=" + strconv.FormatUint(uint64(a1+1), 10), wantIndex: func() argent.Index { return a1 + 1 }, wantBuilt: 2},
		{name: "MinIndexAhead", do: func() { f.write(put("newer", "1")) }, query: "min_index=1000", wantIndex: func() argent.Index { return a1 + 2 }, wantBuilt: 3},
		{name: "AtApplied", query: "min_index=1000", wantIndex: func() argent.Index { return a1 + 2 }, wantBuilt: 3},
		{name: "Old", do: func() { f.write(put("newest", "1")); f.clock.Advance(6 * time.Second) }, query: "", wantIndex: func() argent.Index { return a1 + 3 }, wantBuilt: 4},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		flt, x := f.getFilter(st.query)
		if want := st.wantIndex(); x != want {
			t.Errorf("%s: filter at %d, want %d", st.name, x, want)
		}
		if got := f.srv.FilterBuilds(); got != st.wantBuilt {
			t.Errorf("%s: %d builds, want %d", st.name, got, st.wantBuilt)
		}
		checkNoFalseNegatives(t, flt, f.states[x])
	}
}

func TestServer_FilterMaxAgeNegative(t *testing.T) {
	f := newFixture(t, &lookup.Config{FilterMaxAge: -1})
	f.write(put("a", "1"))
	f.getFilter("")
	x := f.write(put("b", "1"))
	if _, got := f.getFilter(""); got != x {
		t.Errorf("filter at %d, want %d: with FilterMaxAge < 0 only the applied index will do", got, x)
	}
	if got := f.srv.FilterBuilds(); got != 2 {
		t.Errorf("%d builds, want 2", got)
	}
}

// TestServer_FilterOneBuild sends many requests at once: one build serves
// them all.
func TestServer_FilterOneBuild(t *testing.T) {
	f := newFixture(t, nil)
	x := f.writeKeys("k", 20_000)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, got := f.getFilter(""); got != x {
				t.Errorf("filter at %d, want %d", got, x)
			}
		}()
	}
	wg.Wait()
	if got := f.srv.FilterBuilds(); got != 1 {
		t.Errorf("%d builds for 16 concurrent requests, want 1", got)
	}
}

// TestServer_FilterResizes: a build sized from the previous build's count
// builds again when the count moved by more than a quarter, so the filter
// always has its headroom.
func TestServer_FilterResizes(t *testing.T) {
	f := newFixture(t, &lookup.Config{FilterMaxAge: -1})
	for _, step := range []struct {
		name  string
		write int // keys to add before the build
	}{
		{name: "First", write: 1000},
		{name: "Doubled", write: 1000},
		{name: "Grown5Percent", write: 100},
	} {
		f.writeKeys(step.name, step.write)
		flt, x := f.getFilter("")
		n := len(f.states[x])
		if got, want := flt.ExpectedKeys(), negfilter.ExpectedKeys(uint64(n)); step.name != "Grown5Percent" && got != want {
			t.Errorf("%s: %d keys, filter sized %d, want %d", step.name, n, got, want)
		}
		if fp := checkNoFalseNegatives(t, flt, f.states[x]); fp > 0.01 {
			t.Errorf("%s: false-positive rate %.4f", step.name, fp)
		}
		if flt.NeedsRebuild() {
			t.Errorf("%s: a fresh filter needs a rebuild (stats %+v)", step.name, flt.Stats())
		}
	}
}
