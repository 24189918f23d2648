package docstest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	const b, e = "<!-- x:begin -->", "<!-- x:end -->"
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		doc     string // "" : no file
		wantErr string
	}{
		{name: "Pair", doc: "# B\n" + b + "\nx\n" + e + "\n"},
		{name: "Missing", wantErr: "no such file"},
		{name: "NoMarkers", doc: "# B\n", wantErr: "found 0 and 0"},
		{name: "Twice", doc: b + e + b + e, wantErr: "found 2 and 2"},
		{name: "Reversed", doc: e + "\n" + b + "\n", wantErr: "comes before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".md")
			if tc.doc != "" {
				if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := checkFile(path, b, e)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkFile: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("checkFile error = %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}
