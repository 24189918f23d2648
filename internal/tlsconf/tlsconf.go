// Package tlsconf loads a node's certificate, key and CA and turns them into
// the tls.Configs of its listeners and of its requests to other nodes.
//
// Every config it returns reads the current pair and CA at each handshake,
// so Reload (on SIGHUP, or Watch noticing new files) takes effect for new
// connections without a restart; a reload that fails keeps the old ones.
//
// Servers ask for a client certificate but do not require one: clients of
// the public API may come without. A certificate that is given must chain
// to the CA, or the handshake fails. Whether a path needs one is the
// HTTP layer's call (RequireClientCert).
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Files names the PEM files of a TLS setup. A node needs all three; a
// client needs CA and may add Cert and Key to present a certificate.
type Files struct {
	Cert string // certificate chain, leaf first
	Key  string // the leaf's private key
	CA   string // the CA certificates peers must chain to
}

// Enabled reports whether any file is named, which turns TLS on.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// ValidateNode reports a setup a node cannot serve with: TLS on a node
// means all three files.
func (f Files) ValidateNode() error {
	if !f.Enabled() {
		return nil
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return errors.New("tls: --tls-cert, --tls-key and --tls-ca go together")
	}
	return nil
}

// validateClient: a client needs the CA, and a key with its certificate.
func (f Files) validateClient() error {
	if f.CA == "" {
		return errors.New("tls: --tls-ca is required to talk to a TLS node")
	}
	if (f.Cert == "") != (f.Key == "") {
		return errors.New("tls: --tls-cert and --tls-key go together")
	}
	return nil
}

// ErrUntrustedPeer marks a peer certificate that does not chain to the CA.
var ErrUntrustedPeer = errors.New("tls: peer certificate not signed by the CA")

// material is one loaded generation of the files.
type material struct {
	cert *tls.Certificate // nil for a client without a certificate
	pool *x509.CertPool
	raw  [3][]byte // file contents, to tell a change
}

// Config holds the current certificate and CA of a node or client.
type Config struct {
	files   Files
	log     *slog.Logger
	cur     atomic.Pointer[material]
	metrics *Metrics // counts refusals; nil counts nothing
}

// Load reads f for a node: all three files. logger receives reload errors;
// m, if not nil, counts handshake refusals.
func Load(f Files, logger *slog.Logger, m *Metrics) (*Config, error) {
	if !f.Enabled() {
		return nil, errors.New("tls: no files given")
	}
	if err := f.ValidateNode(); err != nil {
		return nil, err
	}
	return load(f, logger, m)
}

// LoadClient reads f for a client: the CA, and optionally a certificate.
func LoadClient(f Files) (*Config, error) {
	if err := f.validateClient(); err != nil {
		return nil, err
	}
	return load(f, nil, nil)
}

func load(f Files, logger *slog.Logger, m *Metrics) (*Config, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Config{files: f, log: logger, metrics: m}
	mat, err := readFiles(f)
	if err != nil {
		return nil, err
	}
	c.cur.Store(mat)
	return c, nil
}

// readFiles reads and parses the files.
func readFiles(f Files) (*material, error) {
	var mat material
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA: %w", err)
	}
	mat.raw[2] = ca
	mat.pool = x509.NewCertPool()
	if !mat.pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("tls: CA %s holds no PEM certificate", f.CA)
	}
	if f.Cert == "" {
		return &mat, nil
	}
	if mat.raw[0], err = os.ReadFile(f.Cert); err != nil {
		return nil, fmt.Errorf("tls: read certificate: %w", err)
	}
	if mat.raw[1], err = os.ReadFile(f.Key); err != nil {
		return nil, fmt.Errorf("tls: read key: %w", err)
	}
	pair, err := tls.X509KeyPair(mat.raw[0], mat.raw[1])
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	mat.cert = &pair
	return &mat, nil
}

// Reload reads the files again. On error the current certificate and CA
// stay in use; the error is logged and returned.
func (c *Config) Reload() error {
	mat, err := readFiles(c.files)
	if err != nil {
		c.log.Error("tls: reload failed; keeping the current certificate", "err", err)
		return err
	}
	c.cur.Store(mat)
	c.log.Info("tls: certificate reloaded", "cert", c.files.Cert, "ca", c.files.CA)
	return nil
}

// Watch reloads the files whenever their contents change, checking every
// interval, until ctx ends. A failed reload is not retried until the files
// change again, so a half-written pair is logged once and picked up when
// complete.
func (c *Config) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed [3]string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, loaded := readRaw(c.files), c.cur.Load().raw
		if now == [3]string{string(loaded[0]), string(loaded[1]), string(loaded[2])} || now == failed {
			continue
		}
		if c.Reload() != nil {
			failed = now
		}
	}
}

// readRaw returns the files' contents; one that cannot be read is empty.
func readRaw(f Files) [3]string {
	var out [3]string
	for i, name := range []string{f.Cert, f.Key, f.CA} {
		if name != "" {
			b, _ := os.ReadFile(name)
			out[i] = string(b)
		}
	}
	return out
}

// Server returns the tls.Config of a listener: the current certificate,
// TLS 1.2 at least, HTTP/1.1 only (the listeners serve HTTP/1.1 and RESP),
// and a client certificate asked for, verified against the current CA when
// given.
func (c *Config) Server() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load().cert, nil
		},
		// Verification is ours rather than crypto/tls's
		// (VerifyClientCertIfGiven) so that it uses the CA of the moment,
		// on resumed sessions too.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			return c.verify(cs.PeerCertificates, "", x509.ExtKeyUsageClientAuth)
		},
	}
}

// Client returns the tls.Config of requests to a TLS node: the server's
// certificate must chain to the current CA and name the host dialled, and
// the current certificate, if any, is presented (mutual TLS between nodes).
// Sessions are cached for resumption.
func (c *Config) Client() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is checked in VerifyConnection against the CA of the
		// moment; crypto/tls's own check would pin the CA at creation.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: server sent no certificate", ErrUntrustedPeer)
			}
			return c.verify(cs.PeerCertificates, cs.ServerName, x509.ExtKeyUsageServerAuth)
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := c.cur.Load().cert; cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil // none: the server may still accept
		},
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
	}
}

// verify checks a peer's chain against the current CA, for usage, and for
// host when not empty.
func (c *Config) verify(chain []*x509.Certificate, host string, usage x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: c.cur.Load().pool, Intermediates: inter, DNSName: host,
		KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUntrustedPeer, err)
	}
	return nil
}
