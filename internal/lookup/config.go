package lookup

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/negfilter"
)

// Config configures a Server. The zero value of each field means its
// default; a nil *Config means all defaults.
type Config struct {
	// Limits bounds the keys asked for. Default: argent's defaults (keys of
	// 1..1024 bytes).
	Limits argent.Limits
	// MaxKeys bounds the keys of one many-key lookup; more get 413
	// too_large. Default 10000, as the public mget.
	MaxKeys int
	// MaxBody bounds the body of a many-key lookup; a larger one gets 413
	// too_large. Default 16 MiB.
	MaxBody int64
	// MaxScanLimit caps the keys of one scan page; a larger limit asked
	// for is cut to it. Default 10000, as the public scan.
	MaxScanLimit int
	// MaxScanBytes bounds the bytes of keys and values of one scan page:
	// the page ends before the item that would pass it (it always holds
	// one item) and says that more keys follow. Default 16 MiB.
	MaxScanBytes int
	// ScanWait bounds how long a scan as of an index the replica has not
	// reached yet waits for it, before it is answered "behind": a longer
	// wait asked for is cut to it, and a scan that names none waits this
	// long. Default 500 ms; negative: no wait.
	ScanWait time.Duration
	// FilterFPRate is the target false-positive rate of the filters built.
	// Default negfilter.DefaultFPRate (1%).
	FilterFPRate float64
	// FilterMaxAge is how long a built filter is served again after the
	// applied index moved on, so that many proxies starting at once cost one
	// build, not one each. Default 5 s; negative: only at the index it was
	// built at.
	FilterMaxAge time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives filter builds and errors the client did not cause.
	// Default: discard.
	Logger *slog.Logger
}

// The defaults of Config.
const (
	DefaultMaxKeys      = 10000
	DefaultMaxBody      = 16 << 20
	DefaultFilterMaxAge = 5 * time.Second
	DefaultMaxScanLimit = 10000
	DefaultMaxScanBytes = 16 << 20
	DefaultScanWait     = 500 * time.Millisecond
)

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	c.Limits = c.Limits.WithDefaults()
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxScanLimit == 0 {
		c.MaxScanLimit = DefaultMaxScanLimit
	}
	if c.MaxScanBytes == 0 {
		c.MaxScanBytes = DefaultMaxScanBytes
	}
	if c.ScanWait == 0 {
		c.ScanWait = DefaultScanWait
	}
	if c.FilterFPRate == 0 {
		c.FilterFPRate = negfilter.DefaultFPRate
	}
	if c.FilterMaxAge == 0 {
		c.FilterMaxAge = DefaultFilterMaxAge
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate returns an argent.ErrInvalid error for a field out of range.
// Zero fields are valid: they mean the default.
func (c *Config) Validate() error {
	switch {
	case c.MaxKeys < 0:
		return fmt.Errorf("%w: lookup: MaxKeys %d is negative", argent.ErrInvalid, c.MaxKeys)
	case c.MaxBody < 0:
		return fmt.Errorf("%w: lookup: MaxBody %d is negative", argent.ErrInvalid, c.MaxBody)
	case c.MaxScanLimit < 0:
		return fmt.Errorf("%w: lookup: MaxScanLimit %d is negative", argent.ErrInvalid, c.MaxScanLimit)
	case c.MaxScanBytes < 0:
		return fmt.Errorf("%w: lookup: MaxScanBytes %d is negative", argent.ErrInvalid, c.MaxScanBytes)
	case c.FilterFPRate < 0 || c.FilterFPRate >= 1 || c.FilterFPRate != c.FilterFPRate:
		return fmt.Errorf("%w: lookup: FilterFPRate %v is not in (0, 1)", argent.ErrInvalid, c.FilterFPRate)
	case c.Limits.MaxKey < 0:
		return fmt.Errorf("%w: lookup: Limits.MaxKey %d is negative", argent.ErrInvalid, c.Limits.MaxKey)
	}
	return nil
}
