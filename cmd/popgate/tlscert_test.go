package main

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedGeneratedOnceAndReused(t *testing.T) {
	cfg := defaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Hostname = "mail.example.com"
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if _, err := loadTLS(cfg, now, logger); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(cfg.DataDir, "tls", "cert.pem")
	first, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(cfg.DataDir, "tls", "key.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", st.Mode().Perm())
	}
	block, _ := pem.Decode(first)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("mail.example.com"); err != nil {
		t.Errorf("certificate does not name the host: %v", err)
	}
	if _, err := loadTLS(cfg, now.Add(time.Hour), logger); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(certFile)
	if string(first) != string(second) {
		t.Error("certificate regenerated on second start; want it kept")
	}
}

func TestTLSBadFiles(t *testing.T) {
	cfg := defaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.TLS.Cert = writeFile(t, cfg.DataDir, "cert.pem", "not a certificate")
	cfg.TLS.Key = writeFile(t, cfg.DataDir, "key.pem", "not a key")
	_, err := loadTLS(cfg, time.Now(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("garbage PEM accepted")
	}
}
