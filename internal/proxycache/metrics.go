package proxycache

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// stats counts what the cache does; Stats returns a copy and the optional
// Prometheus collectors read it.
type stats struct {
	hits, misses, readErrors  atomic.Uint64
	admitted                  atomic.Uint64
	refusedStale, refusedDisk atomic.Uint64
	refusedLimit              atomic.Uint64
	applied, updated, evicted atomic.Uint64
}

// Stats is a snapshot of the cache's counters, all since Open.
type Stats struct {
	Hits, Misses uint64
	// ReadErrors counts Gets answered as misses because Pebble failed.
	ReadErrors uint64
	// Admitted counts stored admissions; RefusedStale those refused because
	// the applied index had moved; RefusedDisk those refused by the free
	// disk floor; RefusedDiskLimit those refused while the cache's files
	// were over their limit (see the package doc, section Disk).
	Admitted, RefusedStale, RefusedDisk, RefusedDiskLimit uint64
	// Applied counts log entries applied; Updated cached keys they changed;
	// Evicted entries deleted by eviction.
	Applied, Updated, Evicted uint64
	// Weight is the policy's weight of cached entries; Budget its bound.
	Weight, Budget uint64
	// PendingEvictions are evicted entries not yet deleted from Pebble.
	PendingEvictions int
	// DiskBytes is the database's size on disk.
	DiskBytes uint64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:             c.stats.hits.Load(),
		Misses:           c.stats.misses.Load(),
		ReadErrors:       c.stats.readErrors.Load(),
		Admitted:         c.stats.admitted.Load(),
		RefusedStale:     c.stats.refusedStale.Load(),
		RefusedDisk:      c.stats.refusedDisk.Load(),
		RefusedDiskLimit: c.stats.refusedLimit.Load(),
		Applied:          c.stats.applied.Load(),
		Updated:          c.stats.updated.Load(),
		Evicted:          c.stats.evicted.Load(),
		Weight:           c.Weight(),
		Budget:           uint64(c.opts.Budget),
		PendingEvictions: c.policy.pendingLen(),
		DiskBytes:        c.DiskUsage(),
	}
}

// collectors returns the cache's Prometheus metrics, all read from the
// counters at scrape time.
func (c *Cache) collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "argent_proxycache_" + name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "argent_proxycache_" + name, Help: help}, f)
	}
	return []prometheus.Collector{
		counter("hits_total", "Gets answered from the cache.", &c.stats.hits),
		counter("misses_total", "Gets not answered from the cache.", &c.stats.misses),
		counter("admitted_total", "Miss results stored.", &c.stats.admitted),
		counter("admit_refused_stale_total", "Admissions refused because the applied index moved.", &c.stats.refusedStale),
		counter("admit_refused_disk_total", "Admissions refused by the free disk floor.", &c.stats.refusedDisk),
		counter("admit_refused_disk_limit_total", "Admissions refused while the cache's files were over their limit.", &c.stats.refusedLimit),
		counter("updated_total", "Cached keys changed by applied log entries.", &c.stats.updated),
		counter("evicted_total", "Entries deleted by eviction.", &c.stats.evicted),
		gauge("weight_bytes", "Weight of cached entries (keys, values, overhead).", func() float64 { return float64(c.Weight()) }),
		gauge("budget_bytes", "The disk budget.", func() float64 { return float64(c.opts.Budget) }),
		gauge("disk_bytes", "Bytes of the cache's database on disk.", func() float64 { return float64(c.DiskUsage()) }),
		gauge("applied_index", "Index the cached entries hold at.", func() float64 { return float64(c.Applied()) }),
	}
}

func (c *Cache) register(r prometheus.Registerer) error {
	var done []prometheus.Collector
	for _, col := range c.collectors() {
		if err := r.Register(col); err != nil {
			for _, d := range done {
				r.Unregister(d)
			}
			return fmt.Errorf("proxycache: register metrics: %w", err)
		}
		done = append(done, col)
	}
	c.registered = done
	return nil
}

// unregister removes the metrics, so that a cache reopened on the same
// registry can register again.
func (c *Cache) unregister(r prometheus.Registerer) {
	for _, col := range c.registered {
		r.Unregister(col)
	}
}
