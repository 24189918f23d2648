package proxycache_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/internal/proxycache"
)

func TestOpen_FormatVersion(t *testing.T) {
	tests := []struct {
		name    string
		version []byte // nil: leave the cache's own
		wantErr error
	}{
		{name: "Current"},
		{name: "Newer", version: binary.BigEndian.AppendUint64(nil, proxycache.FormatVersion+1), wantErr: argent.ErrCorruption},
		{name: "Malformed", version: []byte{1}, wantErr: argent.ErrCorruption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			c, err := proxycache.Open("db", proxycache.Options{FS: fs, Budget: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.version != nil {
				db, err := pebble.Open("db", &pebble.Options{FS: fs})
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Set([]byte("mformat"), tt.version, pebble.Sync); err != nil {
					t.Fatal(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
			c, err = proxycache.Open("db", proxycache.Options{FS: fs, Budget: 1 << 20})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open = %v, want %v", err, tt.wantErr)
			}
			if c != nil {
				_ = c.Close()
			}
		})
	}
}

func TestCache_Closed(t *testing.T) {
	c := newTestCache(t, map[string]string{"a": "1"})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, ok := c.Get([]byte("a")); ok {
		t.Error("Get after Close hit")
	}
	if err := c.Apply(entries(11, []argent.Op{put("a", "2")})...); !errors.Is(err, argent.ErrClosed) {
		t.Errorf("Apply after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Admit([]byte("a"), proxycache.Entry{}, 10); !errors.Is(err, argent.ErrClosed) {
		t.Errorf("Admit after Close = %v, want ErrClosed", err)
	}
	if err := c.Reset(argent.State{Index: 20}); !errors.Is(err, argent.ErrClosed) {
		t.Errorf("Reset after Close = %v, want ErrClosed", err)
	}
}

func TestCache_Metrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	fs := vfs.NewMem()
	for range 2 { // a reopened cache registers again
		c, err := proxycache.Open("db", proxycache.Options{FS: fs, Budget: 1 << 20, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		c.Get([]byte("k"))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, mf := range mfs {
			names = append(names, mf.GetName())
		}
		got := strings.Join(names, " ")
		for _, want := range []string{"argent_proxycache_misses_total", "argent_proxycache_weight_bytes", "argent_proxycache_applied_index"} {
			if !strings.Contains(got, want) {
				t.Errorf("metric %s missing from %s", want, got)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
