package main

import (
	"bytes"
	"testing"
)

func TestParseFlags(t *testing.T) {
	var errs bytes.Buffer
	for _, bad := range [][]string{{"-keys", "0"}, {"-batch", "0"}, {"-writers", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, &errs); err == nil {
			t.Errorf("parseFlags(%q) = nil error", bad)
		}
	}
	if _, err := parseFlags([]string{"-keys", "10"}, &errs); err != nil {
		t.Error(err)
	}
}

func TestKeyName(t *testing.T) {
	if k := keyName(42); k != "bench/snap/00000042" {
		t.Errorf("keyName(42) = %q", k)
	}
}
