// Package tlstest makes throwaway TLS credentials for tests: a fresh
// self-signed certificate for 127.0.0.1, localhost and a chosen host name,
// a server configuration that presents it and a client configuration that
// trusts it. Like net/http/httptest it is for _test.go files only.
//
// It lives under auth/ because certificates are credentials and the
// top-level layout is fixed; pop3, smtp, smtp/queue and cmd tests all
// import it.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// Cert is a self-signed certificate with both ends of a TLS connection
// configured for it.
type Cert struct {
	// Certificate is the certificate and its private key.
	Certificate tls.Certificate
	// Pool trusts only Certificate.
	Pool *x509.CertPool
	// Server presents Certificate.
	Server *tls.Config
	// Client trusts Pool and verifies the name given to New.
	Client *tls.Config
}

// New makes a certificate valid for an hour either side of now, for host,
// "localhost" and 127.0.0.1. Client's ServerName is host. It fails the
// test on any error.
func New(t testing.TB, host string) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: key: %v", err)
	}
	names := []string{host}
	if host != "localhost" {
		names = append(names, "localhost")
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: certificate: %v", err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: parsed}
	return &Cert{
		Certificate: cert,
		Pool:        pool,
		Server:      &tls.Config{Certificates: []tls.Certificate{cert}},
		Client:      &tls.Config{RootCAs: pool, ServerName: host},
	}
}
