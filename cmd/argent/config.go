package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/alecthomas/kong"
)

// tomlLoader reads a TOML config file for kong. Keys are flag names in
// kebab-case at the top level ("listen", "upstream", "history"), or inside a
// table named for the command ("[replica] upstream = ..."), which wins.
// Unknown keys are an error, so a typo does not pass silently.
func tomlLoader(r io.Reader) (kong.Resolver, error) {
	var raw map[string]any
	if _, err := toml.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &tomlResolver{values: raw}, nil
}

type tomlResolver struct {
	values map[string]any
}

// Validate rejects keys that are not a flag of any command.
func (t *tomlResolver) Validate(app *kong.Application) error {
	flags := map[string]bool{}
	cmds := map[string]map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		own := map[string]bool{}
		for _, f := range n.Flags {
			flags[f.Name] = true
			own[f.Name] = true
		}
		if n.Type == kong.CommandNode {
			cmds[n.Name] = own
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
	var unknown []string
	for k, v := range t.values {
		if table, ok := v.(map[string]any); ok {
			own, isCmd := cmds[k]
			if !isCmd {
				unknown = append(unknown, "["+k+"]")
				continue
			}
			for fk := range table {
				if !own[fk] && !flags[fk] {
					unknown = append(unknown, k+"."+fk)
				}
			}
			continue
		}
		if !flags[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config: unknown keys %s", strings.Join(unknown, ", "))
	}
	return nil
}

// Resolve returns the config file's value for a flag, as a string kong
// parses like a command-line value.
func (t *tomlResolver) Resolve(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
	var v any
	var ok bool
	if cmd := ctx.Selected(); cmd != nil {
		if table, isTable := t.values[cmd.Name].(map[string]any); isTable {
			v, ok = table[flag.Name]
		}
	}
	if !ok {
		v, ok = t.values[flag.Name]
	}
	if !ok {
		return nil, nil
	}
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ","), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		return fmt.Sprint(x), nil
	}
}

// byteSize is a flag holding a size such as 512MiB, 1GB or 4096.
type byteSize int64

// UnmarshalText parses sizes with an optional unit: B, KB/KiB, MB/MiB,
// GB/GiB, TB/TiB (decimal and binary units both count in powers of 1024,
// as operators usually mean).
func (b *byteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(s[:i]), strings.ToLower(strings.TrimSpace(s[i:]))
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("invalid size %q: want a number with an optional unit such as 512MiB", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}[unit]
	if mult == 0 {
		return fmt.Errorf("invalid size %q: unknown unit %q", s, unit)
	}
	*b = byteSize(n * mult)
	return nil
}
