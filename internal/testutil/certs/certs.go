// Package certs makes CAs and certificates for tests and benchmarks of
// TLS: an ECDSA P-256 CA, and leaves it signs for 127.0.0.1 and localhost,
// usable as server and client certificates, written to PEM files.
//
//	ca := certs.NewCA(t)
//	f := ca.Issue(t, "node-a") // f.Cert, f.Key, f.CA: files in t.TempDir()
//
// A program without a testing.TB (a benchmark command) uses New and
// IssueFiles, which return errors instead.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/argent-kv/argent/internal/tlsconf"
)

// CA is a test certificate authority.
type CA struct {
	Cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	dir    string
	CAFile string // the CA certificate, PEM
}

// NewCA returns a new CA with its certificate written to a file in
// t.TempDir().
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// New returns a new CA, valid for a day, with its certificate written to
// dir/ca.pem; the certificates it issues go in dir too.
func New(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "argent test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	ca := &CA{Cert: cert, key: key, dir: dir}
	ca.CAFile = filepath.Join(ca.dir, "ca.pem")
	if err := write(ca.CAFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue signs a certificate named name for 127.0.0.1, ::1 and localhost,
// for server and client use, and returns its files with the CA's.
func (ca *CA) Issue(t testing.TB, name string) tlsconf.Files {
	t.Helper()
	f, err := ca.IssueFiles(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// IssueFiles is Issue for a caller without a testing.TB.
func (ca *CA) IssueFiles(name string) (tlsconf.Files, error) {
	f := tlsconf.Files{Cert: filepath.Join(ca.dir, name+".pem"), Key: filepath.Join(ca.dir, name+"-key.pem"), CA: ca.CAFile}
	if _, err := ca.issueTo(name, f.Cert, f.Key); err != nil {
		return tlsconf.Files{}, err
	}
	return f, nil
}

// IssueTo signs a certificate named name as Issue does and writes it to
// the files given (replacing them: a test of reload).
func (ca *CA) IssueTo(t testing.TB, name, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	cert, err := ca.issueTo(name, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (ca *CA) issueTo(name, certFile, keyFile string) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: key of %s: %w", name, err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate of %s: %w", name, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: key of %s: %w", name, err)
	}
	if err := write(certFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	if err := write(keyFile, "EC PRIVATE KEY", kder); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate of %s: %w", name, err)
	}
	return cert, nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	return n, nil
}

// write writes one PEM block to name, through a rename so that a reader
// sees the old file or the new one.
func write(name, typ string, der []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
