package node_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/apiwire"
	"github.com/argent-kv/argent/internal/group"
	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// tlsClient returns a client of n over TLS that trusts ca and presents
// files' certificate, if any.
func tlsClient(t *testing.T, n *node.Node, files tlsconf.Files) (*client.Client, *tls.Config) {
	t.Helper()
	tc, err := tlsconf.LoadClient(files)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tc.Client()
	c, err := client.New(n.Addr(), client.WithTLSConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

// TestNode_TLSTree: a root, a replica and a proxy, all on TLS with
// certificates of one CA: the replica follows the root over mutual TLS,
// the proxy follows the replica and resolves its misses there, writes are
// forwarded to the root, and clients without a certificate read and write
// through the public API and the RESP port.
func TestNode_TLSTree(t *testing.T) {
	ca := certs.NewCA(t)
	root := start(t, node.Config{Role: node.RoleRoot, TLS: ca.Issue(t, "root")})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}, TLS: ca.Issue(t, "replica"),
		RESPListen: "127.0.0.1:0"})
	anon := tlsconf.Files{CA: ca.CAFile}
	rootc, _ := tlsClient(t, root, anon)
	last := write(t, rootc, 100, "a")
	waitApplied(t, replica, last)
	ri, rh := stateHash(t, root.Store())
	pi, ph := stateHash(t, replica.Store())
	if ri != pi || rh != ph {
		t.Fatalf("root %d %x, replica %d %x", ri, rh[:4], pi, ph[:4])
	}
	if !root.TLS() || !replica.TLS() {
		t.Fatal("nodes do not report TLS")
	}

	// Public API over TLS without a client certificate: a read, and a
	// write the replica forwards to the root over mutual TLS.
	repc, cfg := tlsClient(t, replica, anon)
	ctx := context.Background()
	idx, err := repc.Put(ctx, []byte("fwd"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := repc.Get(ctx, []byte("fwd"), client.ReadOptions{MinIndex: idx})
	if err != nil || string(v.Value) != "x" {
		t.Fatalf("Get after forwarded write = %+v, %v", v, err)
	}

	// The RESP port over TLS.
	rc := redis.NewClient(&redis.Options{Addr: replica.RESPAddr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1, TLSConfig: withServerName(cfg)})
	defer rc.Close()
	if err := rc.Set(ctx, "resp", "y", 0).Err(); err != nil {
		t.Fatalf("RESP SET over TLS: %v", err)
	}
	if got, err := rc.Do(ctx, "GET", "a/last").Text(); err != nil || got != "99" {
		t.Fatalf("RESP GET over TLS = %q, %v", got, err)
	}

	// A proxy: its log stream and its misses' lookups at the replica are
	// node-to-node paths, which need its certificate.
	proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{replica.Addr()}, CacheSize: 16 << 20,
		WindowBytes: 1 << 10, TLS: ca.Issue(t, "proxy")})
	proxc, _ := tlsClient(t, proxy, anon)
	v, err = proxc.Get(ctx, []byte("a/0005"), client.ReadOptions{MinIndex: idx, Wait: 20 * time.Second})
	if err != nil || len(v.Value) != 100 || v.Value[0] != 5 {
		t.Fatalf("proxy Get (a miss) = %+v, %v", v, err)
	}
	if n := counter(t, replica.Registry(), "argent_lookup_keys_total"); n == 0 {
		t.Fatal("the proxy's miss was not looked up at the replica")
	}
	for _, n := range []*node.Node{root, replica, proxy} {
		if got := counter(t, n.Registry(), "argent_tls_handshake_errors_total"); got != 0 {
			t.Errorf("%s refused %v handshakes", n.Role(), got)
		}
	}
}

// withServerName names the host a go-redis client dials, which it does not
// set by itself.
func withServerName(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	return cfg
}

// TestNode_TLSRefusesForeignCA: a replica whose certificate another CA
// signed is refused at the root's handshake, counted, and follows nothing;
// a plain client is refused too; the root's state is unchanged.
func TestNode_TLSRefusesForeignCA(t *testing.T) {
	ca, other := certs.NewCA(t), certs.NewCA(t)
	root := start(t, node.Config{Role: node.RoleRoot, TLS: ca.Issue(t, "root")})
	rootc, _ := tlsClient(t, root, tlsconf.Files{CA: ca.CAFile})
	last := write(t, rootc, 10, "a")
	before := root.Status()

	foreign := other.Issue(t, "intruder")
	foreign.CA = ca.CAFile // it trusts the root; the root must not trust it
	intruder := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}, TLS: foreign})
	waitFor(t, 10*time.Second, func() error {
		if n := tlsRefusals(t, root, tlsconf.ReasonUntrustedPeer); n < 1 {
			return fmt.Errorf("untrusted_peer refusals %v", n)
		}
		return nil
	})
	// A client certificate of the other CA on the public API: refused too.
	_, cfg := tlsClient(t, root, tlsconf.Files{CA: ca.CAFile, Cert: foreign.Cert, Key: foreign.Key})
	conn, err := tls.Dial("tcp", root.Addr(), withServerName(cfg))
	if err == nil {
		// TLS 1.3: the client learns of the refusal at its first read.
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	// Plain HTTP on the TLS port.
	if resp, err := http.Get("http://" + root.Addr() + "/v1/status"); err == nil {
		resp.Body.Close()
		t.Fatalf("plain HTTP answered %d", resp.StatusCode)
	}

	if got := intruder.Store().Applied(); got != 0 {
		t.Fatalf("the intruder applied %d entries", got)
	}
	after := root.Status()
	if after.AppliedIndex != last || after.AppliedIndex != before.AppliedIndex || len(after.Children) != 0 {
		t.Fatalf("root changed: before %+v, after %+v", before, after)
	}
}

// TestNode_TLSInternalPathNeedsClientCert: node-to-node paths answer 403
// client_cert_required to a TLS client without a certificate; the public
// API answers it.
func TestNode_TLSInternalPathNeedsClientCert(t *testing.T) {
	ca := certs.NewCA(t)
	root := start(t, node.Config{Role: node.RoleRoot, TLS: ca.Issue(t, "root")})
	tc, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	hc := tc.HTTPClient(&http.Transport{})
	defer hc.CloseIdleConnections()
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/internal/v1/log?from=1", 403},
		{"GET", "/internal/v1/snapshot", 403},
		{"POST", "/internal/v1/lookup", 403}, // a fast-lane path
		{"POST", "/internal/raft/stream", 403},
		{"GET", "/v1/status", 200},
		{"GET", "/v1/kv/nope", 404},
	} {
		req, _ := http.NewRequest(tt.method, "http://"+root.Addr()+tt.path, strings.NewReader(""))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.status)
		}
		if tt.status == 403 {
			var e apiwire.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tlsconf.CodeClientCertRequired {
				t.Fatalf("%s: body %s", tt.path, body)
			}
		}
	}
	if got := counter(t, root.Registry(), "argent_tls_client_cert_required_total"); got != 4 {
		t.Fatalf("client_cert_required counted %v, want 4", got)
	}
}

// TestNode_TLSReload: after the files are replaced and ReloadTLS, a new
// connection sees the new certificate.
func TestNode_TLSReload(t *testing.T) {
	ca := certs.NewCA(t)
	files := ca.Issue(t, "root")
	root := start(t, node.Config{Role: node.RoleRoot, TLS: files})
	_, cfg := tlsClient(t, root, tlsconf.Files{CA: ca.CAFile})
	serving := func() string {
		conn, err := tls.Dial("tcp", root.Addr(), withServerName(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := serving(); got != "root" {
		t.Fatalf("serves %q", got)
	}
	ca.IssueTo(t, "root-renewed", files.Cert, files.Key)
	if err := root.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := serving(); got != "root-renewed" {
		t.Fatalf("after reload serves %q", got)
	}
}

func tlsRefusals(t *testing.T, n *node.Node, reason string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "argent_tls_handshake_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestNode_TLSRelay: root -> replica -> relay -> proxy on TLS: the relay
// follows the replica and looks the proxy's misses up there, both over
// mutual TLS.
func TestNode_TLSRelay(t *testing.T) {
	ca := certs.NewCA(t)
	root := start(t, node.Config{Role: node.RoleRoot, TLS: ca.Issue(t, "root")})
	replica := start(t, node.Config{Role: node.RoleReplica, Upstreams: []string{root.Addr()}, TLS: ca.Issue(t, "replica")})
	rootc, _ := tlsClient(t, root, tlsconf.Files{CA: ca.CAFile})
	last := write(t, rootc, 20, "k")
	waitApplied(t, replica, last)
	rel := startRelayNode(t, node.Config{Upstreams: []string{replica.Addr()}, DC: "dc1", TLS: ca.Issue(t, "relay")})
	proxy := start(t, node.Config{Role: node.RoleProxy, Upstreams: []string{rel.Addr()}, DC: "dc1", CacheSize: 16 << 20,
		WindowBytes: 1 << 10, TLS: ca.Issue(t, "proxy")})
	pc, _ := tlsClient(t, proxy, tlsconf.Files{CA: ca.CAFile})
	v, err := pc.Get(context.Background(), []byte("k/0003"), client.ReadOptions{MinIndex: last, Wait: 20 * time.Second})
	if err != nil || len(v.Value) != 100 || v.Value[0] != 3 {
		t.Fatalf("proxy Get through the relay = %+v, %v", v, err)
	}
	if n := counter(t, rel.Registry(), "argent_relay_upstream_lookups_total"); n == 0 {
		t.Fatal("the miss did not go through the relay")
	}
}

// TestNode_TLSGroup: a root group of three on TLS elects a leader and
// commits over mutual TLS Raft streams, and a write at a follower member
// is forwarded to the leader.
func TestNode_TLSGroup(t *testing.T) {
	ca := certs.NewCA(t)
	var peers []group.Peer
	for i := range 3 {
		peers = append(peers, group.Peer{ID: uint64(i + 1), Addr: cluster.FreeAddr(t)})
	}
	var nodes []*node.Node
	for _, p := range peers {
		nodes = append(nodes, start(t, node.Config{Role: node.RoleRoot, Listen: p.Addr, GroupID: p.ID, GroupPeers: peers,
			TLS: ca.Issue(t, fmt.Sprint("member-", p.ID))}))
	}
	waitFor(t, 20*time.Second, func() error {
		for i, n := range nodes {
			if g := n.Status().Group; g == nil || len(g.Members) != 3 || g.Leader == 0 {
				return fmt.Errorf("member %d: group %+v", i+1, g)
			}
		}
		return nil
	})
	ctx := context.Background()
	for i, n := range nodes {
		c, _ := tlsClient(t, n, tlsconf.Files{CA: ca.CAFile})
		idx, err := c.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v"))
		if err != nil {
			t.Fatalf("put at member %d: %v", i+1, err)
		}
		for j, m := range nodes {
			if _, err := m.Store().WaitApplied(ctx, 10*time.Second, idx); err != nil {
				t.Fatalf("member %d below %d: %v", j+1, idx, err)
			}
		}
	}
}
