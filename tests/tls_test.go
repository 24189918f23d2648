package tests

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/argent-kv/argent"
	"github.com/argent-kv/argent/client"
	"github.com/argent-kv/argent/internal/testutil/certs"
	"github.com/argent-kv/argent/internal/testutil/cluster"
	"github.com/argent-kv/argent/internal/tlsconf"
)

// TestTLS_Tree runs a root, a replica and a proxy as processes, all on TLS
// with certificates of one CA: writes reach the replica and the proxy over
// mutual TLS and read back equal; a replica whose certificate another CA
// signed is refused at the root's handshake, counted, and applies nothing;
// after the root's files are replaced and SIGHUP, new connections see the
// new certificate and the tree keeps following.
func TestTLS_Tree(t *testing.T) {
	skipShort(t)
	ca, other := certs.NewCA(t), certs.NewCA(t)
	flags := func(f tlsconf.Files) []string {
		return []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
	}
	anon, err := tlsconf.LoadClient(tlsconf.Files{CA: ca.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	hc := anon.HTTPClient(&http.Transport{})
	t.Cleanup(hc.CloseIdleConnections)
	start := func(role string, args ...string) *cluster.Node {
		n := cluster.NewNode(t, role, args...)
		n.SetHTTPClient(hc)
		n.Start()
		n.WaitReady(cluster.DefaultReadyTimeout)
		return n
	}
	rootFiles := ca.Issue(t, "root")
	root := start("root", flags(rootFiles)...)
	replica := start("replica", append([]string{"--upstream", root.Addr}, flags(ca.Issue(t, "replica"))...)...)
	proxy := start("proxy", append([]string{"--upstream", replica.Addr, "--cache-size", "64MiB", "--window-bytes", "1KiB"},
		flags(ca.Issue(t, "proxy"))...)...)
	dumpOnFailure(t, root, replica, proxy)

	clientOf := func(n *cluster.Node) *client.Client {
		c, err := client.New(n.Addr, client.WithTLSConfig(anon.Client()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	rc := clientOf(root)
	var last argent.Index
	for i := range 50 {
		if last, err = rc.Put(ctx, []byte(fmt.Sprintf("k/%02d", i)), []byte(fmt.Sprintf("v%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitAllApplied(t, []*cluster.Node{replica, proxy}, last, 20*time.Second)
	for _, n := range []*cluster.Node{replica, proxy} {
		c := clientOf(n)
		for i := range 50 {
			v, err := c.Get(ctx, []byte(fmt.Sprintf("k/%02d", i)), client.ReadOptions{MinIndex: last})
			if err != nil || string(v.Value) != fmt.Sprintf("v%d", i) {
				t.Fatalf("%s: k/%02d = %+v, %v", n.Name, i, v, err)
			}
		}
	}

	foreign := other.Issue(t, "intruder")
	foreign.CA = ca.CAFile // it trusts the root; the root must not trust it
	intruder := cluster.NewNode(t, "replica", append([]string{"--upstream", root.Addr}, flags(foreign)...)...)
	theirs, err := tlsconf.LoadClient(tlsconf.Files{CA: other.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	intruderHC := theirs.HTTPClient(&http.Transport{})
	t.Cleanup(intruderHC.CloseIdleConnections)
	intruder.SetHTTPClient(intruderHC) // its server certificate is of the other CA
	intruder.Start()
	cluster.WaitFor(t, 15*time.Second, func() error {
		m, err := scrapeMetrics(hc, root)
		if err != nil {
			return err
		}
		if n := m[`argent_tls_handshake_errors_total{reason="untrusted_peer"}`]; n < 1 {
			return fmt.Errorf("untrusted_peer refusals %v", n)
		}
		return nil
	})
	if st, err := intruder.Status(); err != nil || st.AppliedIndex != 0 {
		t.Fatalf("intruder status %+v, %v: want applied 0", st, err)
	}
	if st, err := root.Status(); err != nil || argent.Index(st.AppliedIndex) != last || len(st.Children) != 1 {
		t.Fatalf("root status %+v, %v: want applied %d and one child", st, err, last)
	}

	// Renew the root's certificate in place and send SIGHUP.
	ca.IssueTo(t, "root-renewed", rootFiles.Cert, rootFiles.Key)
	root.Reload()
	cluster.WaitFor(t, 10*time.Second, func() error {
		conn, err := tls.Dial("tcp", root.Addr, withHost(anon.Client()))
		if err != nil {
			return err
		}
		defer conn.Close()
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "root-renewed" {
			return fmt.Errorf("root serves %q", cn)
		}
		return nil
	})
	if last, err = rc.Put(ctx, []byte("after-reload"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitAllApplied(t, []*cluster.Node{replica, proxy}, last, 20*time.Second)
}

// withHost names the loopback host for a tls.Dial.
func withHost(cfg *tls.Config) *tls.Config {
	cfg.ServerName = "127.0.0.1"
	return cfg
}
