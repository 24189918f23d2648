package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The docs whose examples TestDocs_Examples runs, in this order, each on a
// tree of its own.
var exampleDocs = []string{"README.md", "docs/API.md"}

// example is one command of a doc and the answer the doc shows for it.
type example struct {
	line int    // line number of the command in the doc
	cmd  string // the shell command, as written
	want []string
}

// parseExamples returns the commands of the ```sh blocks of a markdown
// document (not those of ```sh setup blocks, which start servers). In a
// block, a line "# -> X" is a line of the answer of the command before it;
// a block written as a transcript has "$ cmd" lines followed by their
// answers; other lines starting with "#" are comments.
func parseExamples(text string) ([]example, error) {
	var (
		out        []example
		inBlock    bool
		runnable   bool
		transcript bool
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if inBlock {
				inBlock = false
				continue
			}
			inBlock = true
			info := strings.Fields(strings.TrimPrefix(trimmed, "```"))
			runnable = len(info) == 1 && info[0] == "sh"
			transcript = false
			continue
		}
		if !inBlock || !runnable {
			continue
		}
		last := len(out) - 1
		switch {
		case strings.HasPrefix(line, "$ "):
			transcript = true
			out = append(out, example{line: n, cmd: strings.TrimPrefix(line, "$ ")})
		case transcript:
			if last < 0 {
				return nil, fmt.Errorf("line %d: an answer before any command", n)
			}
			if trimmed != "" {
				out[last].want = append(out[last].want, line)
			}
		case strings.HasPrefix(trimmed, "# -> "):
			if last < 0 {
				return nil, fmt.Errorf("line %d: an answer before any command", n)
			}
			out[last].want = append(out[last].want, strings.TrimPrefix(trimmed, "# -> "))
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			out = append(out, example{line: n, cmd: line})
		}
	}
	if inBlock {
		return nil, fmt.Errorf("a code block is not closed")
	}
	return out, sc.Err()
}

var (
	idRE     = regexp.MustCompile(`\b[0-9a-f]{16,}\b`)
	numberRE = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)
)

// normalize makes a line of text comparable with a line of the docs: every
// node or dataset ID (16 hex digits or more) is H, every number N, and runs
// of blanks are one space.
func normalize(s string) string {
	s = idRE.ReplaceAllString(s, "H")
	return strings.Join(strings.Fields(numberRE.ReplaceAllString(s, "N")), " ")
}

// sameShape reports whether got has the JSON shape of want: objects with
// the same fields, each of the same shape; arrays with elements each of the
// shape of some element of want (both empty or neither); other values of
// the same JSON type.
func sameShape(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !sameShape(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || (len(g) == 0) != (len(w) == 0) {
			return false
		}
		if len(g) == len(w) {
			for i := range w {
				if !sameShape(w[i], g[i]) {
					return false
				}
			}
			return true
		}
		for _, gv := range g {
			found := false
			for _, wv := range w {
				if sameShape(wv, gv) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	case string:
		_, ok := got.(string)
		return ok
	case float64:
		_, ok := got.(float64)
		return ok
	case bool:
		_, ok := got.(bool)
		return ok
	case nil:
		return got == nil
	}
	return false
}

// checkAnswer returns an error unless every line of want is in out: a JSON
// object or array as a line of out of the same shape, any other line as a
// line equal to it but for numbers and blanks. A want line "..." stands for
// lines the doc leaves out.
func checkAnswer(want []string, out string) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, w := range want {
		if strings.TrimSpace(w) == "..." {
			continue
		}
		var wj any
		isJSON := (strings.HasPrefix(w, "{") || strings.HasPrefix(w, "[")) && json.Unmarshal([]byte(w), &wj) == nil
		found := false
		for _, l := range lines {
			l = strings.TrimRight(l, "\r")
			if isJSON {
				var gj any
				if json.Unmarshal([]byte(l), &gj) == nil && sameShape(wj, gj) {
					found = true
					break
				}
			} else if normalize(l) == normalize(w) {
				found = true
				break
			}
		}
		if !found {
			kind := "line"
			if isJSON {
				kind = "JSON of the shape of"
			}
			return fmt.Errorf("no %s %q in the answer", kind, w)
		}
	}
	return nil
}

// Every runnable example of the README and docs/API.md, run against a real
// `argent dev` tree, exits 0 and answers what the doc shows (see
// docs/API.md, "The examples", for the rules).
func TestDocs_Examples(t *testing.T) {
	skipShort(t)
	for _, doc := range exampleDocs {
		t.Run(doc, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("..", doc))
			if err != nil {
				t.Fatal(err)
			}
			exs, err := parseExamples(string(text))
			if err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			if len(exs) < 5 {
				t.Fatalf("%s: only %d runnable examples found", doc, len(exs))
			}
			tree := startDevTree(t)
			ctx := context.Background()
			for _, ex := range exs {
				cmd := tree.Replace(ex.cmd)
				if tool := strings.Fields(cmd)[0]; tool != tree.Bin {
					if _, err := exec.LookPath(tool); err != nil {
						t.Errorf("%s:%d: %s: the examples need %s on PATH (curl: Debian's curl; redis-cli: redis-tools)", doc, ex.line, ex.cmd, tool)
						continue
					}
				}
				out, err := runShell(ctx, tree.Dir, tree.Root, cmd, 30*time.Second)
				if err != nil {
					t.Errorf("%s:%d: %s: %v\n%s", doc, ex.line, ex.cmd, err, out)
					continue
				}
				want := make([]string, len(ex.want))
				for i, w := range ex.want {
					want[i] = tree.Replace(w)
				}
				if err := checkAnswer(want, out); err != nil {
					t.Errorf("%s:%d: %s: %v; the answer:\n%s", doc, ex.line, ex.cmd, err, out)
				}
			}
			t.Logf("%s: %d examples run", doc, len(exs))
		})
	}
}

// The parser and the matcher of TestDocs_Examples, on a made-up doc.
func TestDocs_ParseAndCheck(t *testing.T) {
	doc := "text\n```sh setup\nbin/argent root --data d\n```\n```sh\ncurl -s x   # a comment\n# -> {\"index\":3}\n# a comment\ncurl -si y\n# -> Argent-Tier: replica\n```\n```sh\n$ argent trace k\nread of \"k\" at index 21\n  ...\n\n$ true\n```\n```go\nx := 1\n```\n"
	exs, err := parseExamples(doc)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%+v", exs)
	want := fmt.Sprintf("%+v", []example{
		{line: 6, cmd: "curl -s x   # a comment", want: []string{`{"index":3}`}},
		{line: 9, cmd: "curl -si y", want: []string{"Argent-Tier: replica"}},
		{line: 13, cmd: "argent trace k", want: []string{`read of "k" at index 21`, "  ..."}},
		{line: 17, cmd: "true"},
	})
	if got != want {
		t.Fatalf("parsed\n%s\nwant\n%s", got, want)
	}
	if _, err := parseExamples("```sh\ncurl x\n"); err == nil {
		t.Error("an unclosed block was accepted")
	}
	if _, err := parseExamples("```sh\n# -> 1\n```\n"); err == nil {
		t.Error("an answer without a command was accepted")
	}

	for _, c := range []struct {
		name string
		want []string
		out  string
		ok   bool
	}{
		{"same shape", []string{`{"index":22}`}, "{\"index\":7}\n", true},
		{"extra field", []string{`{"index":22}`}, `{"index":7,"x":1}`, false},
		{"missing field", []string{`{"index":22,"next":"k"}`}, `{"index":7}`, false},
		{"wrong type", []string{`{"index":22}`}, `{"index":"22"}`, false},
		{"array elements", []string{`{"items":[{"key":"a","value":"dg=="},{"key":"b","absent":true}]}`},
			`{"items":[{"key":"a","absent":true},{"key":"b","absent":true},{"key":"c","value":"dg=="}]}`, true},
		{"array element of another shape", []string{`{"items":[{"key":"a"}]}`}, `{"items":[{"key":1}]}`, false},
		{"empty array", []string{`{"items":[]}`}, `{"items":[{"key":"a"}]}`, false},
		{"JSON among headers", []string{"HTTP/1.1 404 Not Found", `{"error":{"code":"x","message":"y"}}`},
			"HTTP/1.1 404 Not Found\r\nArgent-Index: 3\r\n\r\n{\"error\":{\"code\":\"not_found\",\"message\":\"m\"}}\n", true},
		{"numbers free", []string{"  window  miss   10µs   no write of the key in (20, 21]"}, "  window  miss  7µs no write of the key in (22, 23]", true},
		{"words not free", []string{"Argent-Tier: replica"}, "Argent-Tier: root", false},
		{"IDs free", []string{"root 127.0.0.1:7400  node 63529099ed23bf89  applied 22"}, "root 127.0.0.1:7400 node 0aee06b2a58dfae0 applied 9", true},
		{"ellipsis", []string{"a", "...", "b"}, "b\na\n", true},
	} {
		if err := checkAnswer(c.want, c.out); (err == nil) != c.ok {
			t.Errorf("%s: checkAnswer(%q, %q) = %v, want ok %v", c.name, c.want, c.out, err, c.ok)
		}
	}
}
