package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/node"
)

// startRoot starts a root node on 127.0.0.1 for the commands to talk to.
func startRoot(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{Role: node.RoleRoot, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs argent with args and stdin in-process and returns the exit
// code, stdout and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := runWith(context.Background(), args, &stdio{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

// mustRun runs argent and fails the test unless it exits 0.
func mustRun(t *testing.T, stdin string, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := runCmd(t, stdin, args...)
	if code != 0 {
		t.Fatalf("argent %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

func TestGet_Output(t *testing.T) {
	srv := "--server=" + startRoot(t).Addr()
	mustRun(t, "", "put", srv, "k", "hello")
	mustRun(t, "\x00\x01bin", "put", srv, "b")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"Newline", []string{"get", srv, "k"}, "hello\n"},
		{"Raw", []string{"get", "--raw", srv, "k"}, "hello"},
		{"RawBinary", []string{"get", "--raw", srv, "b"}, "\x00\x01bin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if out, _ := mustRun(t, "", tt.args...); out != tt.want {
				t.Fatalf("stdout %q, want %q", out, tt.want)
			}
		})
	}
}

// Errors are one line, "argent: OP KEY: cause", with long keys cut short,
// and change nothing.
func TestClientCommands_Errors(t *testing.T) {
	n := startRoot(t)
	srv := "--server=" + n.Addr()
	long := strings.Repeat("k", 2048)
	mustRun(t, "", "put", srv, "c", "1")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // the whole stderr
	}{
		{"PutEmptyKey", []string{"put", srv, "", "v"}, 1, "argent: put: key is empty\n"},
		{"GetEmptyKey", []string{"get", srv, ""}, 1, "argent: get: key is empty\n"},
		{"PutLongKey", []string{"put", srv, long, "v"}, 1, "argent: put " + strings.Repeat("k", 64) + "…(2048 bytes): too large: key of 2048 bytes is longer than the limit of 1024\n"},
		{"GetMissing", []string{"get", srv, "nope"}, 1, "argent: get nope: not found (index 1)\n"},
		{"NoServer", []string{"get", "--server=127.0.0.1:1", "k"}, 1, "argent: get k: no answer from 127.0.0.1:1: connection refused\n"},
		{"BadServer", []string{"get", "--server=ftp://x", "k"}, 2, "argent: --server \"ftp://x\": invalid input: scheme \"ftp\" is not http or https\n"},
		{"TxnCondition", []string{"txn", srv, "--if", "c=7", "--put", "c=2"}, 1, "argent: txn: condition failed: c has mod index 1, want 7\n"},
		{"TxnAbsent", []string{"txn", srv, "--if", "c=0", "--put", "c=2"}, 1, "argent: txn: condition failed: c exists (mod index 1), want absent\n"},
		{"TxnNothing", []string{"txn", srv}, 1, "argent: txn: no operations: give --put, --delete, --delete-prefix or --file\n"},
		{"TxnBadIf", []string{"txn", srv, "--if", "c=x", "--put", "c=2"}, 1, "argent: txn: --if c=x: \"x\" is not a mod index\n"},
		{"UnknownCommand", []string{"hepl"}, 2, "argent: unexpected argument hepl, did you mean one of \"del\", \"help\"? (see argent help)\n"},
		{"UnknownFlag", []string{"get", "--nope", "k"}, 2, "argent: unknown flag --nope (see argent help get)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", tt.args...)
			if code != tt.code || errOut != tt.want || out != "" {
				t.Fatalf("exit %d, stderr %q, stdout %q\nwant exit %d, stderr %q", code, errOut, out, tt.code, tt.want)
			}
		})
	}
	if got := n.Store().Applied(); got != 1 {
		t.Fatalf("applied %d after failed commands, want 1", got)
	}
}

func TestShortKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"config/x", "config/x"},
		{"", `""`},
		{"a b", `"a b"`},
		{"\x00k", `"\x00k"`},
		{strings.Repeat("é", 40), strings.Repeat("é", 32) + "…(80 bytes)"},
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "…(65 bytes)"},
	} {
		if got := shortKey(tt.in); got != tt.want {
			t.Errorf("shortKey(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCause(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tt := range []struct {
		name string
		err  error
		key  string
		want string
	}{
		{"Prefixes", fmt.Errorf("client: put %q: %w: empty key", "", argent.ErrInvalid), "", "key is empty"},
		{"LongKeyQuoted", fmt.Errorf("client: get %q: boom %q", long, long), long, "boom " + strings.Repeat("x", 64) + "…(100 bytes)"},
		{"Condition", &argent.ConditionError{Key: []byte("k"), Want: 3, Got: 0}, "", "condition failed: k is absent, want mod index 3"},
		{"Deadline", fmt.Errorf("client: get: %w", context.DeadlineExceeded), "", "timed out"},
		{"MultiLine", fmt.Errorf("a\nb"), "", "a b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := cause(tt.err, tt.key); got != tt.want {
				t.Fatalf("cause = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, tt := range []struct {
		name      string
		args      []string
		code      int
		want, not string
	}{
		{"Command", []string{"help", "get"}, 0, "Usage: argent get <key>", "--config"},
		{"Nested", []string{"help", "member", "add"}, 0, "Usage: argent member add <id> <addr>", ""},
		{"All", []string{"help"}, 0, "Commands:", ""},
		{"ServerCommandHasConfig", []string{"root", "--help"}, 0, "--config=FILE", ""},
		{"ClientCommandHasNoConfig", []string{"mget", "--help"}, 0, "--server", "--config"},
		{"DevSaysWhatItRuns", []string{"help", "dev"}, 0, "four proxies", ""},
		{"MinFreeDiskCoversGroups", []string{"root", "--help"}, 0, "raises a disk", "A single root only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := runCmd(t, "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) || (tt.not != "" && strings.Contains(out, tt.not)) {
				t.Fatalf("exit %d, stdout:\n%s\nwant exit %d with %q and without %q", code, out, tt.code, tt.want, tt.not)
			}
		})
	}
	if code, _, errOut := runCmd(t, "", "help", "nope"); code != 2 || errOut != "argent: help: no command \"nope\" (see argent help)\n" {
		t.Fatalf("help nope: exit %d, %q", code, errOut)
	}
}

func TestMGet(t *testing.T) {
	srv := "--server=" + startRoot(t).Addr()
	mustRun(t, "", "txn", srv, "--put", "a=1", "--put", "b=two words", "--put", "c,d=comma")
	mustRun(t, "\xff\xfe", "put", srv, "bin")
	out, errOut := mustRun(t, "", "mget", srv, "a", "b", "nope", "bin", "c,d")
	if want := "a 1\nb two words\nnope (absent)\nbin base64://4=\nc,d comma\n"; out != want {
		t.Fatalf("stdout %q, want %q", out, want)
	}
	if errOut != "5 keys at index 2\n" {
		t.Fatalf("stderr %q", errOut)
	}
	out, _ = mustRun(t, "", "mget", "--json", srv, "a", "nope")
	if want := `{"index":2,"items":[{"key":"a","value":"MQ==","mod_index":1},{"key":"nope","absent":true}]}` + "\n"; out != want {
		t.Fatalf("--json %q, want %q", out, want)
	}
}

func TestTxn(t *testing.T) {
	n := startRoot(t)
	srv := "--server=" + n.Addr()
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "t.json")
	if err := os.WriteFile(jsonFile, []byte(`{"conditions":[{"key":"j","mod_index":0}],"ops":[{"op":"put","key":"j","value":"aGk="},{"op":"put","key":"t","text":"text"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tomlFile := filepath.Join(dir, "t.toml")
	if err := os.WriteFile(tomlFile, []byte("[[conditions]]\nkey = \"j\"\nmod_index = 1\n[[ops]]\nop = \"delete\"\nkey = \"j\"\n[[ops]]\nop = \"put\"\nkey = \"u\"\ntext = \"from toml\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := mustRun(t, "", "txn", srv, "--file", jsonFile); out != "index 1\n" {
		t.Fatalf("json txn: %q", out)
	}
	if out, _ := mustRun(t, "", "txn", srv, "-f", tomlFile, "--put", "v=flag"); out != "index 2\n" {
		t.Fatalf("toml txn: %q", out)
	}
	out, _ := mustRun(t, "", "mget", srv, "j", "t", "u", "v")
	if want := "j (absent)\nt text\nu from toml\nv flag\n"; out != want {
		t.Fatalf("after the txns: %q, want %q", out, want)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"ops":[{"op":"upsert","key":"x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "", "txn", srv, "-f", bad); code != 1 || !strings.Contains(errOut, `op 1: "upsert" is not put, delete or delete_prefix`) {
		t.Fatalf("bad op: exit %d, %q", code, errOut)
	}
	mustRun(t, "", "txn", srv, "--delete-prefix", "t", "--put", "w=a,b")
	out, _ = mustRun(t, "", "mget", srv, "t", "w")
	if want := "t (absent)\nw a,b\n"; out != want {
		t.Fatalf("after --delete-prefix t --put w=a,b: %q, want %q", out, want)
	}
}

func TestWatch_Text(t *testing.T) {
	srv := "--server=" + startRoot(t).Addr()
	for _, tt := range []struct {
		name string
		json bool
		want string
	}{
		{"Text", false, "1 put w/a hello\n1 put w/b base64:AAE=\n2 delete w/a\n"},
		{"JSON", true, `{"index":1,"ops":[{"op":"put","key":"w/a","value":"aGVsbG8="},{"op":"put","key":"w/b","value":"AAE="}]}` + "\n" + `{"index":2,"ops":[{"op":"delete","key":"w/a"}]}` + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			args := []string{"watch", srv, "--from", "1", "w/"}
			if tt.json {
				args = append(args, "--json")
			}
			done := make(chan int)
			go func() { done <- runWith(ctx, args, &stdio{in: strings.NewReader(""), out: &out, err: &out}) }()
			if tt.name == "Text" {
				mustRun(t, "", "txn", srv, "--put", "w/a=hello", "--put", "w/b=\x00\x01", "--put", "x=not watched")
				mustRun(t, "", "del", srv, "w/a")
			}
			deadline := time.Now().Add(10 * time.Second)
			for out.String() != tt.want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if code := <-done; code != 0 || out.String() != tt.want {
				t.Fatalf("exit %d, output %q, want %q", code, out.String(), tt.want)
			}
		})
	}
}

// Failover: the first node is down, the second answers.
func TestClientCommands_Failover(t *testing.T) {
	live := startRoot(t).Addr()
	srv := "--server=127.0.0.1:1," + live
	mustRun(t, "", "put", srv, "k", "v")
	if out, _ := mustRun(t, "", "get", srv, "k"); out != "v\n" {
		t.Fatalf("get through failover: %q", out)
	}
}

func TestLoadExport_RoundTrip(t *testing.T) {
	a := startRoot(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "in.jsonl")
	var lines []string
	for i := range 250 {
		lines = append(lines, fmt.Sprintf(`{"key":"j/%03d","value":"v%d"}`, i, i))
	}
	lines = append(lines, `{"key":"j/bin","value_b64":"AP8="}`, "", `{"key":"j/nl","value":"two\nlines"}`)
	if err := os.WriteFile(jsonl, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	csvFile := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(csvFile, []byte("c/1,one\nc/2,\"with, comma\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srvA := "--server=" + a.Addr()
	out, errOut := mustRun(t, "", "load", srvA, "--batch-keys", "100", "--interval", "1ns", jsonl)
	if out != "index 3\n" || !strings.Contains(errOut, "loaded 100/252 keys (39%)") || !strings.Contains(errOut, "loaded 252 keys in 3 batches") {
		t.Fatalf("load jsonl: stdout %q, stderr %q", out, errOut)
	}
	if out, _ = mustRun(t, "", "load", srvA, csvFile); out != "index 4\n" {
		t.Fatalf("load csv: %q", out)
	}
	if out, _ = mustRun(t, "", "get", srvA, "c/2"); out != "with, comma\n" {
		t.Fatalf("csv value: %q", out)
	}
	export, errOut := mustRun(t, "", "export", srvA)
	if errOut != "exported 254 keys at index 4\n" {
		t.Fatalf("export: %q", errOut)
	}
	// The state at index 3, before the CSV: the j/ keys only.
	old, errOut := mustRun(t, "", "export", "--index", "3", srvA)
	if errOut != "exported 252 keys at index 3\n" || strings.Contains(old, "c/1") {
		t.Fatalf("export --index 3: %q", errOut)
	}
	b := startRoot(t)
	srvB := "--server=" + b.Addr()
	if out, _ = mustRun(t, export, "load", srvB, "-"); out != "index 1\n" {
		t.Fatalf("load from stdin: %q", out)
	}
	again, _ := mustRun(t, "", "export", srvB)
	if again != export {
		t.Fatalf("export | load | export differs:\n%s\n---\n%s", export, again)
	}
	if out, _ = mustRun(t, "", "get", "--raw", srvB, "j/bin"); out != "\x00\xff" {
		t.Fatalf("binary value after the round trip: %q", out)
	}
	var first loadLine
	if err := json.Unmarshal([]byte(strings.SplitN(export, "\n", 2)[0]), &first); err != nil || first.Key != "c/1" || *first.Value != "one" {
		t.Fatalf("first export line %+v, %v", first, err)
	}
}

// A file with bad lines is reported line by line and nothing is written.
func TestLoad_BadLines(t *testing.T) {
	n := startRoot(t)
	srv := "--server=" + n.Addr()
	for _, tt := range []struct {
		name, file, body string
		want             []string
	}{
		{"JSON", "bad.jsonl", "{\"key\":\"a\",\"value\":\"1\"}\nnot json\n{\"key\":\"\",\"value\":\"x\"}\n{\"key\":\"b\",\"value_b64\":\"!!\"}\n{\"key\":\"c\"}\n",
			[]string{"bad.jsonl:2: not a JSON object", "bad.jsonl:3: key is empty", "bad.jsonl:4: value_b64 is not base64", "bad.jsonl:5: no value or value_b64", "4 bad lines; nothing was written"}},
		{"CSV", "bad.csv", "a,1\nb\nc,3,4\n", []string{"bad.csv:2: 1 fields, want 2", "bad.csv:3: 3 fields, want 2", "2 bad lines; nothing was written"}},
		{"Extension", "data.xml", "", []string{"cannot tell the format"}},
		{"Empty", "empty.jsonl", "\n", []string{"no keys in the input; nothing was written"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(p, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "", "load", srv, p)
			if code == 0 || out != "" {
				t.Fatalf("exit %d, stdout %q", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	if got := n.Store().Applied(); got != 0 {
		t.Fatalf("applied %d after bad loads, want 0", got)
	}
}

func TestProgress_Terminal(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true, 200, time.Second)
	p.update(200)
	p.done()
	if s := b.String(); !strings.HasPrefix(s, "\r[##############################] 100% 200/200 keys") || !strings.Contains(s, "ETA 0s") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("bar %q", s)
	}
}

func TestScan_StatusTrace(t *testing.T) {
	n := startRoot(t)
	srv := "--server=" + n.Addr()
	mustRun(t, "", "txn", srv, "--put", "s/a=1", "--put", "s/b=\x01", "--put", "s/c=3", "--put", "t=4")
	for _, tt := range []struct {
		name      string
		args      []string
		out, errs string
	}{
		{"Keys", []string{"scan", srv, "s/"}, "s/a\ns/b\ns/c\n", "3 keys at index 1\n"},
		{"Values", []string{"scan", srv, "--values", "s/"}, "s/a\t1\ns/b\tbase64:AQ==\ns/c\t3\n", "3 keys at index 1\n"},
		{"Limit", []string{"scan", srv, "--limit", "2"}, "s/a\ns/b\n", "2 keys at index 1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut := mustRun(t, "", tt.args...)
			if out != tt.out || errOut != tt.errs {
				t.Fatalf("stdout %q stderr %q, want %q %q", out, errOut, tt.out, tt.errs)
			}
		})
	}
	if out, _ := mustRun(t, "", "status", srv); !strings.Contains(out, "role:        root") || !strings.Contains(out, "applied:     1") {
		t.Fatalf("status:\n%s", out)
	}
	if out, _ := mustRun(t, "", "trace", srv, "s/a"); !strings.Contains(out, `read of "s/a" at index 1`) {
		t.Fatalf("trace:\n%s", out)
	}
}

// Every page of a listing is read at the first page's index, also when a
// write commits between two pages.
func TestScanPages_OneIndex(t *testing.T) {
	n := startRoot(t)
	ctx := context.Background()
	put := func(v string) argent.Index {
		var ops []argent.Op
		for i := range 1500 {
			ops = append(ops, argent.Op{Type: argent.OpPut, Key: []byte(fmt.Sprintf("p/%04d", i)), Value: []byte(v)})
		}
		idx, err := n.Write(ctx, argent.Batch{Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	first := put("old")
	cl, err := client.New(n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	keys := 0
	at, err := scanPages(ctx, cl, []byte("p/"), 0, client.ReadOptions{}, func(it client.Item) bool {
		if keys == 0 {
			put("new") // commits before the second page is asked for
		}
		keys++
		seen[string(it.Value)]++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if at != first || keys != 1500 || seen["old"] != 1500 {
		t.Fatalf("listing at %d (want %d): %d keys, values %v; want all old", at, first, keys, seen)
	}
}
