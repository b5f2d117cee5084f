//go:build interop

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropBinaryImportSendmail runs the real binary end to end:
// `popgate import sendmail` on the Debian-like tree, `popgate check` on
// the result, then `popgate serve` on it, and swaks delivers to a
// virtusertable address and to the catch-all, which land in the right
// maildirs, while an error:nouser address is refused.
func TestInteropBinaryImportSendmail(t *testing.T) {
	need(t, "swaks")
	dir := t.TempDir()
	out, data := filepath.Join(dir, "conf"), filepath.Join(dir, "data")
	if o, err := runCmd(t, "", binary(t), "import", "sendmail", "--from", etcMail, "--out", out, "--data-dir", data, "--domain", "example.com"); err != nil {
		t.Fatalf("import: %v\n%s", err, o)
	}
	cfg := filepath.Join(out, "popgate.toml")
	if o, err := runCmd(t, "", binary(t), "check", "--config", cfg); err != nil {
		t.Fatalf("check: %v\n%s", err, o)
	}
	// The import writes no listeners: add test ones (it writes no [pop3]
	// or [smtp] table either, so appending them is valid TOML).
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\n[pop3]\nlisten = [\"127.0.0.1:0\"]\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@example.com", "catchall@example.com"} {
		if o, err := runCmd(t, "pw of "+u+"\n", binary(t), "user", "add", "--stdin", "--config", cfg, u); err != nil {
			t.Fatalf("user add: %v\n%s", err, o)
		}
	}
	s := startBinary(t, cfg)
	if o := swaksSend(t, s.mx, "127.0.0.2", "sender@remote.example", "info@example.net"); !strings.Contains(o, "queued as") {
		t.Fatalf("virtusertable address refused:\n%s", o)
	}
	if o := swaksSend(t, s.mx, "127.0.0.2", "sender@remote.example", "whoever@example.net"); !strings.Contains(o, "queued as") {
		t.Fatalf("catch-all refused:\n%s", o)
	}
	if o := swaksSend(t, s.mx, "127.0.0.2", "sender@remote.example", "nobody@example.net"); !strings.Contains(o, "550 5.1.1 User unknown") {
		t.Fatalf("error:nouser address not refused:\n%s", o)
	}
	for box, want := range map[string]string{"example.com/alice": "hello from swaks", "example.com/catchall": "hello from swaks"} {
		files, _ := filepath.Glob(filepath.Join(data, "mail", box, "new", "*"))
		if len(files) != 1 {
			t.Fatalf("%s: %d messages, want 1", box, len(files))
		}
		if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), want) {
			t.Errorf("%s: message lacks %q", box, want)
		}
	}
}
