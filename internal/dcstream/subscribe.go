package dcstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// SubscribeOptions configures a subscription. The zero value of each field
// means its default; a nil *SubscribeOptions means all defaults.
type SubscribeOptions struct {
	// HTTPClient makes the request. It must have no overall timeout.
	// Default: a client with no timeout and no compression.
	HTTPClient *http.Client
	// Dataset, when set, is sent as Argent-Dataset: a relay of another
	// dataset refuses the subscription.
	Dataset argent.DatasetID
	// StallTimeout ends a stream that sent no line (progress lines come
	// every second) for this long. Default 5 s.
	StallTimeout time.Duration
	// MaxLine bounds one line. Default 64 MiB (a 32 MiB value in base64).
	MaxLine int
}

// errStalled ends a stream that sent nothing for StallTimeout.
var errStalled = errors.New("dcstream: stream stalled")

// Subscribe follows the miss stream of the relay at addr ("host:port" or a
// URL) with default options, calling fn for every miss in order; see
// SubscribeWith.
func Subscribe(ctx context.Context, addr string, fn func(Miss)) error {
	return SubscribeWith(ctx, addr, nil, fn)
}

// SubscribeWith follows the miss stream of the relay at addr, calling fn
// (on the calling goroutine) for every miss in order, until ctx ends (it
// returns nil) or the stream ends, breaks, stalls or sends a malformed
// line (it returns an error wrapping argent.ErrUnavailable, or
// ErrMalformed). Misses published while no stream is open are lost: a
// caller subscribes again at once, and must not rely on the stream for
// correctness (it is a prefetch).
func SubscribeWith(ctx context.Context, addr string, opts *SubscribeOptions, fn func(Miss)) error {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Second
	}
	if o.MaxLine <= 0 {
		o.MaxLine = 64 << 20
	}
	base, err := client.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("dcstream: address %q: %w", addr, err)
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(o.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()

	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base+Path, nil)
	if err != nil {
		return fmt.Errorf("dcstream: %w", err)
	}
	if !o.Dataset.IsZero() {
		req.Header.Set(HeaderDataset, o.Dataset.String())
	}
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return endErr(ctx, sctx, fmt.Errorf("subscribe to %s: %w", base, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%w: dcstream: %s answered %s: %s", argent.ErrUnavailable, base, resp.Status, strings.TrimSpace(string(msg)))
	}
	if v := resp.Header.Get(HeaderVersion); v != Version {
		return fmt.Errorf("%w: dcstream: %s speaks stream version %q, want %q", argent.ErrUnavailable, base, v, Version)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(b) > o.MaxLine {
				return fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, o.MaxLine)
			}
			long = append(long, b...)
			continue
		}
		if err != nil {
			return endErr(ctx, sctx, fmt.Errorf("read stream of %s: %w", base, err))
		}
		if long != nil {
			b = append(long, b...)
			long = nil
		}
		stall.Reset(o.StallTimeout)
		m, progress, err := DecodeLine(b)
		if err != nil {
			return fmt.Errorf("dcstream: stream of %s: %w", base, err)
		}
		if !progress {
			fn(m)
		}
	}
}

// endErr is what a subscription that failed with err returns: nil when the
// caller's ctx ended, else err marked unavailable (and stalled when the
// watchdog ended it).
func endErr(ctx, sctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(context.Cause(sctx), errStalled) {
		return fmt.Errorf("%w: %w: %w", argent.ErrUnavailable, errStalled, err)
	}
	return fmt.Errorf("%w: dcstream: %w", argent.ErrUnavailable, err)
}
