package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/argent-kv/argent/internal/node"
	"github.com/argent-kv/argent/internal/testutil/certs"
)

// The client commands talk to a TLS node with --tls-ca (a client
// certificate is optional); bad TLS flags exit 2 and start nothing.
func TestRun_TLS(t *testing.T) {
	ca := certs.NewCA(t)
	files := ca.Issue(t, "root")
	n, err := node.Start(context.Background(), node.Config{Role: node.RoleRoot, DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLS: files})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	srv, caFlag := "--server="+n.Addr(), "--tls-ca="+ca.CAFile
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"PutOverTLS", []string{"put", srv, caFlag, "k", "v"}, 0},
		{"GetOverTLS", []string{"get", srv, caFlag, "k"}, 0},
		{"GetHTTPSURL", []string{"get", "--server=https://" + n.Addr(), caFlag, "k"}, 0},
		{"GetWithClientCert", []string{"get", srv, caFlag, "--tls-cert=" + files.Cert, "--tls-key=" + files.Key, "k"}, 0},
		{"StatusTree", []string{"status", srv, caFlag, "--tree"}, 0},
		{"PlainToTLSNode", []string{"get", srv, "k"}, 1},
		{"MissingCAFile", []string{"get", srv, "--tls-ca=/nonexistent/ca.pem", "k"}, 2},
		{"CertWithoutKey", []string{"get", srv, caFlag, "--tls-cert=" + files.Cert, "k"}, 2},
		{"NodeCertWithoutCA", []string{"root", "--data", t.TempDir(), "--listen=127.0.0.1:0", "--tls-cert=" + files.Cert, "--tls-key=" + files.Key}, 2},
		{"NodeBadCA", []string{"replica", "--data", t.TempDir(), "--listen=127.0.0.1:0", "--upstream=127.0.0.1:1",
			"--tls-cert=" + files.Cert, "--tls-key=" + files.Key, "--tls-ca=" + files.Key}, 2},
		{"RelayMissingKey", []string{"relay", "--listen=127.0.0.1:0", "--upstream=127.0.0.1:1",
			"--tls-cert=" + files.Cert, "--tls-key=/nonexistent", "--tls-ca=" + ca.CAFile}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(ctx, tt.args); got != tt.want {
				t.Fatalf("argent %s: exit %d, want %d", strings.Join(tt.args, " "), got, tt.want)
			}
		})
	}
	if got := n.Store().Applied(); got != 1 {
		t.Fatalf("applied %d after one put, want 1", got)
	}
}

// The TLS flags come from the config file too.
func TestConfig_TOMLTLS(t *testing.T) {
	cfg := t.TempDir() + "/tls.toml"
	writeFile(t, cfg, "tls-cert = \"/etc/argent/node.pem\"\ntls-key = \"/etc/argent/node-key.pem\"\n[proxy]\ntls-ca = \"/etc/argent/ca.pem\"\n")
	cli, err := parse(t, "proxy", "--config", cfg, "--data", "/tmp/p", "--listen", "127.0.0.1:1", "--upstream", "a:1", "--cache-size", "1GiB")
	if err != nil {
		t.Fatal(err)
	}
	f := cli.Proxy.files()
	if f.Cert != "/etc/argent/node.pem" || f.Key != "/etc/argent/node-key.pem" || f.CA != "/etc/argent/ca.pem" {
		t.Fatalf("proxy TLS files %+v", f)
	}
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
