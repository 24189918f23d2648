package mdsection_test

import (
	"testing"

	"github.com/argent-kv/argent/bench/internal/mdsection"
)

func TestReplace(t *testing.T) {
	const b, e = "<!-- x:begin -->", "<!-- x:end -->"
	sec := b + "\nnew\n" + e + "\n"
	tests := []struct{ name, doc, want string }{
		{"empty", "", sec},
		{"append", "# T\ntext", "# T\ntext\n\n" + b + "\nnew\n" + e + "\n"},
		{"replace", "# T\n" + b + "\nold\n" + e + "\nafter\n", "# T\n" + b + "\nnew\n" + e + "\nafter\n"},
		{"begin without end", "a\n" + b + "\nold\n", "a\n" + b + "\nold\n\n" + b + "\nnew\n" + e + "\n"},
	}
	for _, tt := range tests {
		if got := mdsection.Replace(tt.doc, b, e, sec); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	const b, e = "<!-- x:begin -->", "<!-- x:end -->"
	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"pair", "a\n" + b + "\nx\n" + e + "\nz\n", true},
		{"none", "a\n", false},
		{"begin only", b + "\n", false},
		{"two pairs", b + e + b + e, false},
		{"reversed", e + "\n" + b, false},
	}
	for _, tt := range tests {
		if err := mdsection.Check(tt.doc, b, e); (err == nil) != tt.ok {
			t.Errorf("%s: Check = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
