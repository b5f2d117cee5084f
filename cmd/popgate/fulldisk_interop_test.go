//go:build interop

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropFullDiskBinary runs the built binary with data_dir on a real
// 2 MiB tmpfs: a full disk is 452 4.3.1 at MAIL FROM and at the end of
// DATA, never 5xx, nothing partial is stored, POP3 keeps serving, and the
// same process accepts mail again once space returns.
func TestInteropFullDiskBinary(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	cfg := filepath.Join(t.TempDir(), "popgate.toml")
	conf := fmt.Sprintf(`hostname = "mx.example.com"
domains = ["example.com"]
data_dir = %q
[pop3]
listen = ["127.0.0.1:0"]
allow_plaintext_auth = true
[smtp]
listen = ["127.0.0.1:0"]
submission = []
max_message_bytes = 1048576
min_free_bytes = 131072
`, dir)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "bob-password\n", binary(t), "user", "add", "--stdin", "--config", cfg, "bob@example.com"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	s := startBinary(t, cfg)
	small := "Subject: small\r\n\r\nhello\r\n"
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 78)+"\r\n", 6000) // 480 KB
	bobDir := filepath.Join(dir, "mail", "example.com", "bob")

	c := smtpSession(t, s.mx, "", "")
	if got := c.Transact("x@remote.example", "bob@example.com", small); !strings.HasPrefix(got, "250") {
		t.Fatalf("with room: %q", got)
	}
	filler := fillDisk(t, filepath.Join(dir, "filler"))
	c.Expect("MAIL FROM:<x@remote.example>", "452 4.3.1")
	if stat, msg := popRetr(t, s.pop, "bob@example.com", "bob-password", 1); !strings.HasPrefix(stat, "+OK 1 ") ||
		!strings.HasPrefix(msg, "Return-Path: <x@remote.example>\r\nDelivered-To: bob@example.com\r\n") {
		t.Fatalf("POP3 on a full disk: %q %q", stat, msg)
	}
	leaveFree(t, filler, 200<<10)
	if got := c.Transact("x@remote.example", "bob@example.com", big); !strings.HasPrefix(got, "452 4.3.1") {
		t.Fatalf("a message larger than the free space: %q, want 452 4.3.1", got)
	}
	if n := maildirFiles(t, bobDir); n != 1 {
		t.Errorf("bob's maildir holds %d files after the refusal, want 1", n)
	}
	filler.Close()
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	if got := c.Transact("x@remote.example", "bob@example.com", big); !strings.HasPrefix(got, "250") {
		t.Fatalf("after space returned: %q", got)
	}
	c.Expect("QUIT", "221")
	if stat, _ := popRetr(t, s.pop, "bob@example.com", "bob-password", 2); !strings.HasPrefix(stat, "+OK 2 ") {
		t.Fatalf("after recovery: %q", stat)
	}
	if log := s.stderr.String(); !strings.Contains(log, "smtp insufficient storage") || strings.Contains(log, "smtp internal error") {
		t.Errorf("log should name the full disk and no internal error:\n%s", log)
	}
}
