// Package auth checks bearer tokens against a TOML file of rules: each token
// has a name, a secret (or its SHA-256) and the key prefixes it may read and
// write. docs/SECURITY.md describes the file.
//
//	a, err := auth.Open("/etc/argent/auth.toml", auth.Options{Logger: logger, Registry: reg})
//	tok, err := a.Authenticate(bearer) // argent.ErrUnauthorized if missing or unknown
//	if !tok.Allowed(key, auth.Read) { ... 403 ... }
//
// Secrets are never kept or compared in the clear: a presented token is
// hashed with SHA-256, looked up by its hash, and the stored hash compared
// with crypto/subtle in constant time. Logs name tokens by their name only.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Right is what a token may do with a key.
type Right uint8

// The rights a rule grants.
const (
	Read Right = iota + 1
	Write
)

func (r Right) String() string {
	switch r {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("right(%d)", uint8(r))
}

// FormatVersion is the only version of the file format this package reads.
const FormatVersion = 1

// MinSecretLen is the shortest secret accepted in clear: shorter ones are
// guessable.
const MinSecretLen = 16

// Token is one entry of the rules: a named secret and its rights. A nil
// *Token (what FromContext returns when no rules are set) may do anything.
type Token struct {
	// Name names the token in logs and errors; the secret never appears.
	Name string

	hash  [sha256.Size]byte
	read  []string // minimal: no prefix in it starts with another
	write []string
}

// Allowed reports whether t may use right on key: whether key starts with
// one of t's prefixes for that right. A write right implies nothing about
// reading, and the other way round.
func (t *Token) Allowed(key []byte, right Right) bool {
	if t == nil {
		return true
	}
	for _, p := range t.prefixes(right) {
		if bytes.HasPrefix(key, []byte(p)) {
			return true
		}
	}
	return false
}

func (t *Token) prefixes(right Right) []string {
	if right == Write {
		return t.write
	}
	return t.read
}

// Touches reports whether deleting every key under prefix could touch a key
// t may read: prefix lies under one of t's read prefixes, or one of them
// lies under prefix. A watch shows such a delete_prefix to the token.
func (t *Token) Touches(prefix []byte) bool {
	if t == nil {
		return true
	}
	for _, p := range t.read {
		if bytes.HasPrefix(prefix, []byte(p)) || strings.HasPrefix(p, string(prefix)) {
			return true
		}
	}
	return false
}

// ReadRanges returns the prefixes whose keys are exactly the keys under
// prefix that t may read, in key order and disjoint: [prefix] itself when a
// read prefix covers it, else the read prefixes that lie under it (none when
// t may read nothing there). A scan walks them in turn instead of filtering
// what it read. A nil t gets [prefix].
func (t *Token) ReadRanges(prefix []byte) [][]byte {
	if t.Allowed(prefix, Read) {
		return [][]byte{prefix}
	}
	var out [][]byte
	for _, p := range t.read { // sorted and minimal, so disjoint and in order
		if strings.HasPrefix(p, string(prefix)) {
			out = append(out, []byte(p))
		}
	}
	return out
}

// Rules are the tokens of one file, looked up by the SHA-256 of the secret.
type Rules struct {
	byHash map[[sha256.Size]byte]*Token
}

// Lookup returns the token whose secret is secret, or nil. The map is keyed
// by the hash of what was presented, so its timing says nothing about a
// secret; the final comparison is constant time.
func (r *Rules) Lookup(secret string) *Token {
	h := sha256.Sum256([]byte(secret))
	t := r.byHash[h]
	if t == nil || subtle.ConstantTimeCompare(h[:], t.hash[:]) != 1 {
		return nil
	}
	return t
}

// Len returns the number of tokens.
func (r *Rules) Len() int { return len(r.byHash) }

// file is the TOML document.
type file struct {
	Version int         `toml:"version"`
	Token   []tokenFile `toml:"token"`
}

type tokenFile struct {
	Name         string    `toml:"name"`
	Secret       string    `toml:"secret"`
	SecretSHA256 string    `toml:"secret_sha256"`
	Read         *[]string `toml:"read"`
	Write        *[]string `toml:"write"`
}

// Parse reads rules from a TOML document. Errors name the line (syntax) or
// the entry (meaning) at fault: unknown keys, a token without a name or
// with two, a missing, short or duplicate secret, a token with no rights.
func Parse(data []byte) (*Rules, error) {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("auth: line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("auth: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("auth: unknown key %q (known: version, and per [[token]] name, secret, secret_sha256, read, write)", und[0].String())
	}
	if f.Version != 0 && f.Version != FormatVersion {
		return nil, fmt.Errorf("auth: version = %d is not supported (this node reads version %d)", f.Version, FormatVersion)
	}
	r := &Rules{byHash: make(map[[sha256.Size]byte]*Token, len(f.Token))}
	names := make(map[string]int, len(f.Token))
	for i, tf := range f.Token {
		t, err := tf.token()
		if err != nil {
			what := fmt.Sprintf("token %d", i+1)
			if tf.Name != "" {
				what += fmt.Sprintf(" (%q)", tf.Name)
			}
			return nil, fmt.Errorf("auth: %s: %w", what, err)
		}
		if j, ok := names[t.Name]; ok {
			return nil, fmt.Errorf("auth: token %d: name %q is already used by token %d", i+1, t.Name, j)
		}
		names[t.Name] = i + 1
		if old, ok := r.byHash[t.hash]; ok {
			return nil, fmt.Errorf("auth: token %d (%q): same secret as token %q", i+1, t.Name, old.Name)
		}
		r.byHash[t.hash] = t
	}
	return r, nil
}

func (tf *tokenFile) token() (*Token, error) {
	t := &Token{Name: tf.Name}
	if strings.TrimSpace(tf.Name) == "" {
		return nil, errors.New("name is missing or empty")
	}
	switch {
	case tf.Secret != "" && tf.SecretSHA256 != "":
		return nil, errors.New("give secret or secret_sha256, not both")
	case tf.Secret != "":
		if len(tf.Secret) < MinSecretLen {
			return nil, fmt.Errorf("secret is %d characters, fewer than %d", len(tf.Secret), MinSecretLen)
		}
		if strings.ContainsAny(tf.Secret, " \t\r\n") {
			return nil, errors.New("secret contains white space, which an Authorization header cannot carry")
		}
		t.hash = sha256.Sum256([]byte(tf.Secret))
	case tf.SecretSHA256 != "":
		b, err := hex.DecodeString(tf.SecretSHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("secret_sha256 is not %d hex digits", 2*sha256.Size)
		}
		copy(t.hash[:], b)
	default:
		return nil, errors.New("secret or secret_sha256 is required")
	}
	if tf.Read == nil && tf.Write == nil {
		return nil, errors.New("no read or write list: the token could do nothing (use [\"\"] for every key)")
	}
	if tf.Read != nil {
		t.read = minimal(*tf.Read)
	}
	if tf.Write != nil {
		t.write = minimal(*tf.Write)
	}
	return t, nil
}

// minimal sorts prefixes and drops those under another one, so that the
// rest are disjoint and in key order.
func minimal(prefixes []string) []string {
	ps := slices.Clone(prefixes)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}
