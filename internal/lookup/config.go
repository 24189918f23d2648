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
	case c.FilterFPRate < 0 || c.FilterFPRate >= 1 || c.FilterFPRate != c.FilterFPRate:
		return fmt.Errorf("%w: lookup: FilterFPRate %v is not in (0, 1)", argent.ErrInvalid, c.FilterFPRate)
	case c.Limits.MaxKey < 0:
		return fmt.Errorf("%w: lookup: Limits.MaxKey %d is negative", argent.ErrInvalid, c.Limits.MaxKey)
	}
	return nil
}
