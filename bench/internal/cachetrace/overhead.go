package cachetrace

import (
	"fmt"
	"path/filepath"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

// EntryOverhead admits one entry to a scratch proxycache.Cache under dir
// and returns what the cache adds to an entry's key and value bytes when it
// weighs it against its budget. A benchmark that sizes --cache-size as a
// fraction of its data set weighs each key as key + value + this, as the
// proxy will.
func EntryOverhead(dir string) (int64, error) {
	c, err := proxycache.Open(filepath.Join(dir, "overhead"), proxycache.Options{Budget: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("cachetrace: entry overhead: %w", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Reset(argent.State{Index: 1}); err != nil {
		return 0, fmt.Errorf("cachetrace: entry overhead: %w", err)
	}
	key, val := []byte("k/00000000"), make([]byte, 100)
	if _, err := c.Admit(key, proxycache.Entry{Present: true, Value: argent.Value{Value: val, ModIndex: 1}}, 1); err != nil {
		return 0, fmt.Errorf("cachetrace: entry overhead: %w", err)
	}
	if err := c.EvictNow(); err != nil {
		return 0, fmt.Errorf("cachetrace: entry overhead: %w", err)
	}
	w := int64(c.Weight())
	if w <= int64(len(key)+len(val)) {
		return 0, fmt.Errorf("cachetrace: proxycache weighs an entry of %d key and value bytes as %d", len(key)+len(val), w)
	}
	return w - int64(len(key)+len(val)), nil
}
