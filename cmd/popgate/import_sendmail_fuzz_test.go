package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// importFiles are the files FuzzImportSendmail fills, in the order of the
// parts of its input (separated by "\f").
var importFiles = []string{"local-host-names", "sendmail.cf", "access", "relay-domains", "mailertable", "aliases", "virtusertable"}

// FuzzImportSendmail feeds arbitrary /etc/mail trees to the importer: it
// never panics, and whenever it succeeds the configuration it wrote loads
// and its files check, which is the command's promise.
func FuzzImportSendmail(f *testing.F) {
	var seed []string
	for _, name := range importFiles {
		b, err := os.ReadFile(filepath.Join(etcMail, name))
		if err != nil {
			f.Fatal(err)
		}
		seed = append(seed, string(b))
	}
	f.Add(strings.Join(seed, "\f"))
	f.Add("example.com\f\f\f\f\f\f@example.com %1@example.com")
	f.Add("a.example\fDS[::1]:25\fTo:x@ ERROR:4.2.0:421 x\f10\f. relay:[10.0.0.1]\fx: \"|a,b\", y\fa@a.example error:nouser")
	f.Fuzz(func(t *testing.T, data string) {
		parts := strings.Split(data, "\f")
		if len(parts) > len(importFiles) {
			return
		}
		dir := t.TempDir()
		from := filepath.Join(dir, "mail")
		if err := os.Mkdir(from, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, p := range parts {
			if err := os.WriteFile(filepath.Join(from, importFiles[i]), []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(dir, "out")
		stdout, stderr, code := importCLI(t, "import", "sendmail", "--from", from, "--out", out, "--data-dir", filepath.Join(dir, "data"))
		if strings.Contains(stderr, "(a bug)") {
			t.Fatalf("import wrote a configuration that does not check:\n%s\n%s", stdout, stderr)
		}
		if code != 0 {
			return
		}
		if _, stderr, code := importCLI(t, "check", "--config", filepath.Join(out, "popgate.toml")); code != 0 {
			t.Fatalf("check failed on the import's result:\n%s", stderr)
		}
	})
}
