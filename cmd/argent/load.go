package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/argent-kv/argent"
)

// LoadCmd writes many keys from a file in batches.
type LoadCmd struct {
	File       string        `arg:"" help:"File to load: JSON lines ({\"key\":\"k\",\"value\":\"text\"} or \"value_b64\") or CSV (key,value); - for stdin."`
	Format     string        `help:"jsonl or csv (default: from the file's extension; jsonl for stdin)." enum:",jsonl,csv" default:""`
	BatchKeys  int           `help:"Keys per batch at most." default:"1000"`
	BatchBytes byteSize      `help:"Key and value bytes per batch at most (a larger single key goes alone)." default:"1MiB"`
	MaxKey     int           `help:"Longest key accepted before anything is sent (the server's --max-key)." default:"1024"`
	Interval   time.Duration `help:"How often progress is reported on stderr when it is not a terminal." default:"2s"`
	MaxErrors  int           `help:"Bad lines reported before giving up." default:"10"`
	ServerFlag
}

// record is one key to load and the line it came from.
type record struct {
	line  int
	key   string
	value []byte
}

// loadLine is one JSON line of a load file (and of an export).
type loadLine struct {
	Key      string  `json:"key"`
	Value    *string `json:"value,omitempty"`
	ValueB64 *string `json:"value_b64,omitempty"`
}

// lineError is a bad input line.
type lineError struct {
	line int
	msg  string
}

// Run reads the whole input, and only when every line is good writes it in
// batches, reporting progress, then prints the index of the last batch.
func (c *LoadCmd) Run(ctx context.Context, io *stdio) error {
	format, err := c.format()
	if err != nil {
		return exitError{code: 2, msg: "load: " + err.Error()}
	}
	if c.BatchKeys < 1 || c.BatchBytes < 1 {
		return exitError{code: 2, msg: "load: --batch-keys and --batch-bytes must be at least 1"}
	}
	in := io.in
	if c.File != "-" {
		f, err := os.Open(c.File)
		if err != nil {
			return exitError{code: 1, msg: "load: " + err.Error()}
		}
		defer f.Close()
		in = f
	}
	recs, bad, err := c.parse(in, format)
	if err != nil {
		return exitError{code: 1, msg: fmt.Sprintf("load %s: %v", c.File, err)}
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(io.err, "%s:%d: %s\n", c.File, b.line, b.msg)
		}
		more := ""
		if len(bad) > c.MaxErrors {
			more = " or more"
		}
		return exitError{code: 1, msg: fmt.Sprintf("load %s: %d%s bad lines; nothing was written", c.File, len(bad), more)}
	}
	if len(recs) == 0 {
		return exitError{code: 1, msg: fmt.Sprintf("load %s: no keys in the input; nothing was written", c.File)}
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	prog := newProgress(io.err, io.errTTY, len(recs), c.Interval)
	var last argent.Index
	batches := 0
	for start := 0; start < len(recs); {
		end, size := start, 0
		for end < len(recs) && end-start < c.BatchKeys {
			n := len(recs[end].key) + len(recs[end].value)
			if end > start && size+n > int(c.BatchBytes) {
				break
			}
			size += n
			end++
		}
		ops := make([]argent.Op, 0, end-start)
		for _, r := range recs[start:end] {
			ops = append(ops, argent.Op{Type: argent.OpPut, Key: []byte(r.key), Value: r.value})
		}
		idx, err := cl.Txn(ctx, argent.Batch{Ops: ops})
		if err != nil {
			prog.done()
			written := "nothing was written"
			if batches > 0 {
				written = fmt.Sprintf("lines before %d were written (%d keys, up to index %d); lines from %d on were not", recs[start].line, start, last, recs[start].line)
			}
			return exitError{code: 1, msg: fmt.Sprintf("load %s: batch of lines %d-%d: %s; %s", c.File, recs[start].line, recs[end-1].line, cause(err, ""), written)}
		}
		last, batches = idx, batches+1
		start = end
		prog.update(start)
	}
	prog.done()
	fmt.Fprintf(io.err, "loaded %d keys in %d batches in %s (%.0f keys/s)\n", len(recs), batches,
		prog.elapsed().Round(time.Millisecond), float64(len(recs))/max(prog.elapsed().Seconds(), 1e-9))
	fmt.Fprintf(io.out, "index %d\n", last)
	return nil
}

// format is --format, or the one the file's extension names.
func (c *LoadCmd) format() (string, error) {
	if c.Format != "" {
		return c.Format, nil
	}
	switch strings.ToLower(filepath.Ext(c.File)) {
	case ".csv":
		return "csv", nil
	case ".jsonl", ".ndjson", ".json", "":
		return "jsonl", nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the extension; give --format jsonl or csv", c.File)
}

// parse reads every record, and up to MaxErrors+1 bad lines.
func (c *LoadCmd) parse(r io.Reader, format string) ([]record, []lineError, error) {
	var recs []record
	var bad []lineError
	addBad := func(line int, format string, args ...any) bool {
		bad = append(bad, lineError{line: line, msg: fmt.Sprintf(format, args...)})
		return len(bad) <= c.MaxErrors
	}
	check := func(line int, key string, value []byte) bool {
		switch {
		case key == "":
			return addBad(line, "key is empty")
		case len(key) > c.MaxKey:
			return addBad(line, "key %s is longer than %d bytes", shortKey(key), c.MaxKey)
		case !utf8.ValidString(key):
			return addBad(line, "key %s is not UTF-8", shortKey(key))
		}
		recs = append(recs, record{line: line, key: key, value: value})
		return true
	}
	if format == "csv" {
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		for {
			fields, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			line, _ := cr.FieldPos(0)
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if !addBad(pe.Line, "%v", pe.Err) {
					break
				}
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			if len(fields) != 2 {
				if !addBad(line, "%d fields, want 2 (key,value)", len(fields)) {
					break
				}
				continue
			}
			if !check(line, fields[0], []byte(fields[1])) {
				break
			}
		}
		return recs, bad, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l loadLine
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			if !addBad(n, "not a JSON object {\"key\":...,\"value\":...}: %v", err) {
				break
			}
			continue
		}
		var v []byte
		switch {
		case l.Value != nil && l.ValueB64 != nil:
			if !addBad(n, "both value and value_b64") {
				return recs, bad, nil
			}
			continue
		case l.Value != nil:
			v = []byte(*l.Value)
		case l.ValueB64 != nil:
			var err error
			if v, err = base64.StdEncoding.DecodeString(*l.ValueB64); err != nil {
				if !addBad(n, "value_b64 is not base64: %v", err) {
					return recs, bad, nil
				}
				continue
			}
		default:
			if !addBad(n, "no value or value_b64") {
				return recs, bad, nil
			}
			continue
		}
		if !check(n, l.Key, v) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return recs, bad, nil
}

// progress reports how far a load is: a bar redrawn in place on a
// terminal, a plain line every interval otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	total    int
	interval time.Duration
	start    time.Time
	last     time.Time
	drawn    bool
}

func newProgress(w io.Writer, tty bool, total int, interval time.Duration) *progress {
	now := time.Now()
	return &progress{w: w, tty: tty, total: total, interval: interval, start: now, last: now}
}

func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

// update reports n keys written.
func (p *progress) update(n int) {
	now := time.Now()
	every := p.interval
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every && n < p.total {
		return
	}
	p.last = now
	secs := max(now.Sub(p.start).Seconds(), 1e-9)
	rate := float64(n) / secs
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-n)/rate*float64(time.Second)) + time.Second - 1).Truncate(time.Second).String()
	}
	pct := 100 * n / p.total
	if p.tty {
		const width = 30
		bar := strings.Repeat("#", width*n/p.total) + strings.Repeat(".", width-width*n/p.total)
		fmt.Fprintf(p.w, "\r[%s] %3d%% %d/%d keys  %.0f keys/s  ETA %s\x1b[K", bar, pct, n, p.total, rate, eta)
		p.drawn = true
		return
	}
	fmt.Fprintf(p.w, "loaded %d/%d keys (%d%%), %.0f keys/s, ETA %s\n", n, p.total, pct, rate, eta)
}

// done ends the bar's line.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
