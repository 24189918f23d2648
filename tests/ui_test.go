package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/cluster"
)

// chromiumPath returns the path of a Chromium binary, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed: apt-get install chromium")
	return ""
}

// newBrowser starts a headless Chromium for the test and returns its
// context; the browser is closed at the end of the test.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // tests run as root, where Chromium's sandbox refuses to start
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// uiRow is one row of the status page's node table, as the page shows it.
type uiRow struct {
	Addr    string `json:"addr"`
	Node    string `json:"node"`
	Role    string `json:"role"`
	Applied string `json:"applied"`
	Tiers   string `json:"tiers"`
}

// uiRowsJS reads the status page's node table.
const uiRowsJS = `Array.from(document.querySelectorAll("#nodes tr")).map(tr => ({
	addr: tr.dataset.addr || "", node: tr.dataset.node || "", role: tr.dataset.role || "",
	applied: (tr.querySelector(".applied") || {textContent: ""}).textContent.replaceAll(",", ""),
	tiers: (tr.querySelector(".tiers") || {textContent: ""}).textContent}))`

// TestUI_StatusPage loads a root's /ui in headless Chromium over a real tree
// (root, replica, proxy): the page must show the three nodes with their
// roles and applied index, the proxy's reads by tier, and follow a write
// made after it loaded (its index reaches every row without a reload).
func TestUI_StatusPage(t *testing.T) {
	skipShort(t)
	chromiumPath(t)
	root := cluster.StartRoot(t)
	rep := cluster.StartReplica(t, []string{root.Addr})
	px := cluster.NewNode(t, "proxy", "--upstream", rep.Addr, "--cache-size", "1MiB")
	px.Start()
	want := map[string]string{} // node ID -> role
	for _, n := range []*cluster.Node{root, rep, px} {
		st := n.WaitReady(cluster.DefaultReadyTimeout)
		want[st.NodeID] = st.Role
	}
	px.WaitFirstState(cluster.DefaultReadyTimeout)
	dumpOnFailure(t, root, rep, px)

	rc := newClient(t, root)
	ctx, cancel := ctxTimeout(60 * time.Second)
	defer cancel()
	first, err := rc.Put(ctx, []byte("ui/a"), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	waitAllApplied(t, []*cluster.Node{rep, px}, first, 10*time.Second)
	// Reads at the proxy, so that its tier counters are not all zero.
	pc := newClient(t, px)
	for range 5 {
		if _, err := pc.Get(ctx, []byte("ui/a"), client.ReadOptions{MinIndex: first, Wait: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}

	bctx := newBrowser(t, 1400, 700)
	bctx, bcancel := context.WithTimeout(bctx, 60*time.Second)
	defer bcancel()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(root.URL()+"/ui")); err != nil {
		t.Fatalf("load /ui: %v", err)
	}
	rows := waitRows(t, bctx, "the tree's three nodes at index "+fmt.Sprint(first), func(rows []uiRow) bool {
		return len(rows) == 3 && allApplied(rows, first)
	})
	for _, r := range rows {
		if role, ok := want[r.Node]; !ok || role != r.Role {
			t.Errorf("page shows node %q as %q at %s; the tree's nodes are %v", r.Node, r.Role, r.Addr, want)
		}
		if r.Role == "proxy" && !strings.Contains(r.Tiers, "%") {
			t.Errorf("proxy row shows no reads by tier: %q", r.Tiers)
		}
	}

	// A write after the page loaded: the page must show its index on
	// every node by itself.
	second, err := rc.Put(ctx, []byte("ui/b"), []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	waitRows(t, bctx, "every node at index "+fmt.Sprint(second), func(rows []uiRow) bool {
		return len(rows) == 3 && allApplied(rows, second)
	})
	refreshes, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("refreshes").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the page refreshed %s times", refreshes)
}

// waitRows polls the page's node table until ok accepts it, failing t with
// the last rows seen after 20 s.
func waitRows(t *testing.T, ctx context.Context, what string, ok func([]uiRow) bool) []uiRow {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var rows []uiRow
	for {
		var err error
		rows, err = chromedp.Run(ctx, chromedp.Evaluate[[]uiRow](uiRowsJS))
		if err == nil && ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status page does not show %s after 20s: rows %+v (last error %v)", what, rows, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func allApplied(rows []uiRow, i argent.Index) bool {
	for _, r := range rows {
		if r.Applied != fmt.Sprint(i) {
			return false
		}
	}
	return true
}

// TestUI_Screenshot writes a screenshot of the status page of the
// deployment topology (deploy/compose.yaml) under a light load to the PNG
// file named by $ARGENT_UI_SCREENSHOT; without it the test is skipped.
// `make screenshot` runs it for docs/img/status-page.png.
func TestUI_Screenshot(t *testing.T) {
	out := os.Getenv("ARGENT_UI_SCREENSHOT")
	if out == "" {
		t.Skip("set ARGENT_UI_SCREENSHOT=FILE.png to write a screenshot of the status page")
	}
	chromiumPath(t)
	topo := startTopology(t)
	load := startPacedLoad(newClient(t, topo.group.Members[0]), 200, 4, 64, 20*time.Second)
	defer load.halt()
	stop := readLoad(t, topo, 20*time.Second)
	defer stop()
	bctx := newBrowser(t, 1500, 560)
	bctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(topo.group.Members[0].URL()+"/ui")); err != nil {
		t.Fatal(err)
	}
	waitRows(t, bctx, "the topology's eight nodes", func(rows []uiRow) bool { return len(rows) == 8 })
	time.Sleep(4 * time.Second) // a few refreshes, for rates
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}
