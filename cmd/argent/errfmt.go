package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
)

// maxKeyShown is how many bytes of a key an error message shows.
const maxKeyShown = 64

// shortKey returns key as an error message shows it: as is when printable,
// quoted otherwise, and cut to its first maxKeyShown bytes with its length
// when longer.
func shortKey(key string) string {
	cut := key
	if len(key) > maxKeyShown {
		cut = key[:maxKeyShown]
		for len(cut) > 0 && !utf8.ValidString(cut) {
			cut = cut[:len(cut)-1]
		}
	}
	if !printable([]byte(cut)) || cut == "" || strings.ContainsAny(cut, " \"") {
		cut = strconv.Quote(cut)
	}
	if len(key) > maxKeyShown {
		cut += fmt.Sprintf("…(%d bytes)", len(key))
	}
	return cut
}

// printable reports whether b is text a terminal shows as is: valid UTF-8
// without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// opError is the error of a client command: exit code 1 and one line
// "OP KEY: cause" (key cut short, see shortKey), without the prefixes the
// layers below add.
func opError(op, key string, err error) error {
	what := op
	if key != "" {
		what += " " + shortKey(key)
	}
	return exitError{code: 1, msg: what + ": " + cause(err, key)}
}

// prefixes are the context the client package and argent's sentinels put
// before a message ("client: put \"k\": argent: invalid input: ..."); a
// one-line message on the terminal does not repeat them.
var prefixes = regexp.MustCompile(`(client: [a-z ]+?( "(?:[^"\\]|\\.)*")?: )|(argent: )`)

// cause describes err for a person in a few words: the server's message
// for an answer, the network error for no answer, with every copy of key
// cut short.
func cause(err error, key string) string {
	var msg string
	var ae *client.Error
	var ce *argent.ConditionError
	var ue *url.Error
	switch {
	case errors.As(err, &ce) && ce.Key != nil:
		msg = fmt.Sprintf("condition failed: %s has mod index %d, want %d", shortKey(string(ce.Key)), ce.Got, ce.Want)
		if ce.Want == 0 {
			msg = fmt.Sprintf("condition failed: %s exists (mod index %d), want absent", shortKey(string(ce.Key)), ce.Got)
		} else if ce.Got == 0 {
			msg = fmt.Sprintf("condition failed: %s is absent, want mod index %d", shortKey(string(ce.Key)), ce.Want)
		}
	case errors.As(err, &ae):
		msg = ae.Message
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", ae.Status)
		}
		if ae.Code == client.CodeNotFound {
			msg = "not found"
		}
	case errors.Is(err, context.DeadlineExceeded):
		msg = "timed out"
	case errors.Is(err, context.Canceled):
		msg = "interrupted"
	case errors.As(err, &ue):
		msg = "no answer from " + hostOf(ue.URL) + ": " + netCause(ue.Err)
	default:
		msg = err.Error()
	}
	msg = prefixes.ReplaceAllString(msg, "")
	if len(key) > maxKeyShown {
		msg = strings.ReplaceAll(msg, strconv.Quote(key), shortKey(key))
		msg = strings.ReplaceAll(msg, key, shortKey(key))
	}
	msg = strings.Replace(msg, "invalid input: empty key", "key is empty", 1)
	msg = strings.Replace(msg, "input too large: ", "too large: ", 1)
	return oneLine(msg)
}

// netCause is the last words of a network error: "connection refused"
// rather than "dial tcp 127.0.0.1:1: connect: connection refused".
func netCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// oneLine turns s into one line of at most 300 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		cut := s[:300]
		for !utf8.ValidString(cut) {
			cut = cut[:len(cut)-1]
		}
		s = cut + "…"
	}
	return s
}
