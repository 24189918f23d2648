package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/argent-kv/argent"
)

const (
	deploySecret = "deploy-secret-0123456789"
	readerSecret = "reader-secret-0123456789"
)

var readerHash = func() string {
	h := sha256.Sum256([]byte(readerSecret))
	return hex.EncodeToString(h[:])
}()

var goodRules = `
version = 1

[[token]]
name = "deploy"
secret = "` + deploySecret + `"
read = ["app/"]
write = ["app/config/"]

[[token]]
name = "reader"
secret_sha256 = "` + readerHash + `"
read = ["app/b/", "app/a/", "app/a/x/", "cfg/"]
`

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"syntax", "[[token]]\nname = \n", "line 2"},
		{"unknown key", "[[token]]\nname = \"a\"\nsecret = \"0123456789abcdef\"\nread = [\"\"]\nrights = 1\n", `unknown key "token.rights"`},
		{"version", "version = 2\n", "version = 2 is not supported"},
		{"no name", "[[token]]\nsecret = \"0123456789abcdef\"\nread = [\"\"]\n", "token 1: name is missing"},
		{"no secret", "[[token]]\nname = \"a\"\nread = [\"\"]\n", `token 1 ("a"): secret or secret_sha256 is required`},
		{"two secrets", "[[token]]\nname = \"a\"\nsecret = \"0123456789abcdef\"\nsecret_sha256 = \"" + readerHash + "\"\nread = [\"\"]\n", "not both"},
		{"short secret", "[[token]]\nname = \"a\"\nsecret = \"short\"\nread = [\"\"]\n", "fewer than 16"},
		{"space in secret", "[[token]]\nname = \"a\"\nsecret = \"0123456789 abcdef\"\nread = [\"\"]\n", "white space"},
		{"bad hash", "[[token]]\nname = \"a\"\nsecret_sha256 = \"abc\"\nread = [\"\"]\n", "64 hex digits"},
		{"no rights", "[[token]]\nname = \"a\"\nsecret = \"0123456789abcdef\"\n", "no read or write list"},
		{"same name", "[[token]]\nname = \"a\"\nsecret = \"0123456789abcdef\"\nread = [\"\"]\n[[token]]\nname = \"a\"\nsecret = \"0123456789abcdefg\"\nread = [\"\"]\n", `token 2: name "a" is already used by token 1`},
		{"same secret", "[[token]]\nname = \"a\"\nsecret = \"0123456789abcdef\"\nread = [\"\"]\n[[token]]\nname = \"b\"\nsecret = \"0123456789abcdef\"\nread = [\"\"]\n", `same secret as token "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") {
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	r, err := Parse([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	deploy, reader := r.Lookup(deploySecret), r.Lookup(readerSecret)
	if deploy == nil || reader == nil || deploy.Name != "deploy" || reader.Name != "reader" {
		t.Fatalf("Lookup: %v %v", deploy, reader)
	}
	for _, tc := range []struct {
		tok   *Token
		key   string
		right Right
		want  bool
	}{
		{deploy, "app/x", Read, true},
		{deploy, "app/", Read, true},
		{deploy, "ap", Read, false},
		{deploy, "other", Read, false},
		{deploy, "app/config/k", Write, true},
		{deploy, "app/x", Write, false},
		{reader, "app/a/1", Read, true},
		{reader, "app/c", Read, false},
		{reader, "app/a/1", Write, false},
		{nil, "anything", Write, true},
	} {
		name := "nil"
		if tc.tok != nil {
			name = tc.tok.Name
		}
		if got := tc.tok.Allowed([]byte(tc.key), tc.right); got != tc.want {
			t.Errorf("%s.Allowed(%q, %s) = %v, want %v", name, tc.key, tc.right, got, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	r, err := Parse([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "deploy", deploySecret + "x", deploySecret[:len(deploySecret)-1], readerHash} {
		if tok := r.Lookup(s); tok != nil {
			t.Errorf("Lookup(%q) = %q, want none", s, tok.Name)
		}
	}
}

func TestReadRanges(t *testing.T) {
	r, err := Parse([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	reader := r.Lookup(readerSecret)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"app/a/", "app/b/", "cfg/"}}, // app/a/x/ is inside app/a/
		{"app/", []string{"app/a/", "app/b/"}},
		{"app/a/", []string{"app/a/"}},
		{"app/a/q", []string{"app/a/q"}},
		{"app/c", nil},
		{"zzz", nil},
	} {
		var got []string
		for _, p := range reader.ReadRanges([]byte(tc.prefix)) {
			got = append(got, string(p))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ReadRanges(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func TestTouches(t *testing.T) {
	r, err := Parse([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	reader := r.Lookup(readerSecret)
	for _, tc := range []struct {
		prefix string
		want   bool
	}{
		{"", true}, {"app/", true}, {"app/a/x", true}, {"app/c/", false}, {"cf", true}, {"z", false},
	} {
		if got := reader.Touches([]byte(tc.prefix)); got != tc.want {
			t.Errorf("Touches(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Bearer abc", "abc"}, {"bearer abc", "abc"}, {"Bearer  abc ", "abc"},
		{"Basic abc", ""}, {"Bearer", ""}, {"", ""},
	} {
		if got := BearerToken(tc.in); got != tc.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAuthenticateAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.toml")
	if err := os.WriteFile(path, []byte(goodRules), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := Open(path, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(""); !errors.Is(err, ErrMissing) || !errors.Is(err, argent.ErrUnauthorized) || Reason(err) != ReasonMissing {
		t.Fatalf("no token: %v", err)
	}
	if _, err := a.Authenticate("nope"); !errors.Is(err, ErrInvalid) || Reason(err) != ReasonInvalid {
		t.Fatalf("wrong token: %v", err)
	}
	if tok, err := a.Authenticate(deploySecret); err != nil || tok.Name != "deploy" {
		t.Fatalf("deploy: %v %v", tok, err)
	}

	// A bad file keeps the rules in force.
	if err := os.WriteFile(path, []byte("[[token]]\nname = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	if _, err := a.Authenticate(deploySecret); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}

	// A good file replaces them.
	const newSecret = "fresh-secret-0123456789"
	if err := os.WriteFile(path, []byte("[[token]]\nname = \"fresh\"\nsecret = \""+newSecret+"\"\nread = [\"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if tok, err := a.Authenticate(newSecret); err != nil || tok.Name != "fresh" {
		t.Fatalf("new token: %v %v", tok, err)
	}
	if _, err := a.Authenticate(deploySecret); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removed token: %v", err)
	}

	a.Refused(ReasonForbidden, ProtoRESP)
	if got := refusedCount(t, reg, ReasonForbidden, ProtoRESP); got != 1 {
		t.Fatalf("argent_auth_refused_total{forbidden,resp} = %v", got)
	}
	// A second Authorizer on the registry shares the counter.
	b, err := Open(path, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	b.Refused(ReasonForbidden, ProtoRESP)
	if got := refusedCount(t, reg, ReasonForbidden, ProtoRESP); got != 2 {
		t.Fatalf("shared counter = %v", got)
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "none.toml"), Options{}); err == nil || !strings.Contains(err.Error(), "read rules") {
		t.Fatalf("Open of a missing file: %v", err)
	}
}

// refusedCount reads argent_auth_refused_total{reason,proto} from reg.
func refusedCount(t *testing.T, reg *prometheus.Registry, reason, proto string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "argent_auth_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if got["reason"] == reason && got["proto"] == proto {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no argent_auth_refused_total{reason=%q,proto=%q}", reason, proto)
	return 0
}

// TestSampleFile checks that the sample rules shipped with the binary load.
func TestSampleFile(t *testing.T) {
	data, err := os.ReadFile("../../cmd/argent/etc/auth.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2 || r.Lookup("change-me-deploy-0123456789") == nil {
		t.Fatalf("sample rules: %d tokens", r.Len())
	}
}
