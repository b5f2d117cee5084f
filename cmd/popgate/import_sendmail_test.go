package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/popgate/popgate/auth"
)

// importCLI runs a popgate command in-process.
// runPopgate runs popgate in-process with args and returns what it printed
// and its exit code.
func runPopgate(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code = run(context.Background(), e, args)
	return out.String(), errb.String(), code
}

const etcMail = "testdata/etc-mail"

// TestImportSendmail imports the Debian-like tree in testdata/etc-mail,
// checks every file written and every line reported, and runs `popgate
// check` on the result.
func TestImportSendmail(t *testing.T) {
	out := filepath.Join(t.TempDir(), "conf")
	stdout, stderr, code := runPopgate(t, "import", "sendmail", "--from", etcMail, "--out", out, "--data-dir", filepath.Join(out, "data"), "--domain", "example.com")
	if code != 0 {
		t.Fatalf("import exited %d\n%s\n%s", code, stdout, stderr)
	}
	// Every line that is not carried over, by file and line, and nothing else.
	var reported []string
	for _, l := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), etcMail+"/"); ok {
			f := strings.SplitN(rest, ":", 3)
			reported = append(reported, f[0]+":"+f[1])
		}
	}
	want := []string{
		"local-host-names:5",                  // [192.0.2.10]
		"sendmail.cf:46",                      // Cwbad@name
		"access:12", "access:13", "access:14", // duplicate, '#' after value, QUARANTINE
		"relay-domains:4",                                    // *.bad.example, once
		"mailertable:6",                                      // uucp-dom
		"aliases:7", "aliases:8", "aliases:10", "aliases:11", // pipe, file, no colon, duplicate
		"virtusertable:8", "virtusertable:9", "virtusertable:10", // remote, plus-detail, %2
	}
	if !slices.Equal(reported, want) {
		t.Errorf("reported lines:\n%q\nwant:\n%q\nstderr:\n%s", reported, want, stderr)
	}
	if !strings.Contains(stderr, "14 line(s) not carried over") {
		t.Errorf("no count in:\n%s", stderr)
	}
	if !strings.Contains(stdout, "mailertable:3: hub.corp.example:2526 was looked up by MX") {
		t.Errorf("the MX difference is not noted:\n%s", stdout)
	}

	cfg, err := loadConfig(filepath.Join(out, "popgate.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"example.com", "localhost", "example.net", "mail.example.com", "intranet.example", "example.org"}; !slices.Equal(cfg.Domains, want) {
		t.Errorf("domains = %q, want %q", cfg.Domains, want)
	}
	if cfg.Queue.Smarthost != "smtp.isp.example:25" {
		t.Errorf("smarthost = %q", cfg.Queue.Smarthost)
	}
	wantRoutes := map[string]string{"example.co.uk": "mx.example.co.uk:25", ".corp.example": "hub.corp.example:2526", "legacy.example": "192.0.2.25:2525"}
	if len(cfg.Queue.Routes) != len(wantRoutes) {
		t.Errorf("routes = %v, want %v", cfg.Queue.Routes, wantRoutes)
	}
	for k, v := range wantRoutes {
		if cfg.Queue.Routes[k] != v {
			t.Errorf("route %s = %q, want %q", k, cfg.Queue.Routes[k], v)
		}
	}
	access := readText(t, cfg.Relay.AccessFile)
	for _, l := range []string{
		"Connect:127.0.0.1\tRELAY", "192.168.0\tRELAY", "spamford.com\tREJECT", "GreetPause:localhost\t0",
		"To:partner.example\tRELAY", "Connect:partner.example\tRELAY", "Connect:192.168.10\tRELAY",
		"To:dead.example\tERROR:5.1.2:550 Host unknown",
		"To:nobody@example.net\tERROR:5.1.1:550 User unknown", "To:old@example.net\tERROR:5.1.1:550 Gone away",
	} {
		if !strings.Contains(access, l+"\n") {
			t.Errorf("access lacks %q:\n%s", l, access)
		}
	}
	aliasText := readText(t, cfg.Users.Aliases)
	for _, l := range []string{
		"sales: alice, bob", "archive: alice", "staff: :include:/etc/mail/staff.list",
		"info@example.net: alice@example.com", "sales@example.net: bob@example.com",
		"@example.net: catchall@example.com", "@example.org: %1@example.com",
	} {
		if !strings.Contains(aliasText, l+"\n") {
			t.Errorf("aliases lack %q:\n%s", l, aliasText)
		}
	}
	if strings.Contains(aliasText, "mailman") || strings.Contains(aliasText, "root: bob") {
		t.Errorf("aliases carry what was refused:\n%s", aliasText)
	}
	if stdout, stderr, code := runPopgate(t, "check", "--config", filepath.Join(out, "popgate.toml")); code != 0 {
		t.Fatalf("popgate check exited %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestImportSendmailServes serves an imported configuration and proves
// its rules over SMTP: virtusertable addresses reach the right maildir,
// error:nouser refuses, relay-domains relays.
func TestImportSendmailServes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "conf")
	if stdout, stderr, code := runPopgate(t, "import", "sendmail", "--from", etcMail, "--out", out, "--data-dir", filepath.Join(out, "data")); code != 0 {
		t.Fatalf("import exited %d\n%s\n%s", code, stdout, stderr)
	}
	cfg, err := loadConfig(filepath.Join(out, "popgate.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// Test listeners, loopback untrusted; no DNS and no outside hosts:
	// the imported smart host and routes are replaced by a closed port.
	cfg.Hostname = "mx.example.com"
	cfg.POP3.Listen, cfg.SMTP.Listen, cfg.SMTP.Submission = []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}
	cfg.Relay.TrustedNetworks = nil
	cfg.Queue.Smarthost, cfg.Queue.Routes = "127.0.0.1:1", nil
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var users strings.Builder
	for _, u := range []string{"alice@example.com", "bob@example.com", "catchall@example.com"} {
		h, err := auth.HashPassword("secret of " + u)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString(u + ":" + h + "\n")
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "users"), []byte(users.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg, &fakeClock{})
	mx := s.addr("smtp.listen")
	cases := []struct{ rcpt, reply, mailbox string }{
		{"info@example.net", "250", "example.com/alice"},       // virtusertable user@domain
		{"anyone@example.net", "250", "example.com/catchall"},  // @domain catch-all
		{"alice@example.org", "250", "example.com/alice"},      // @domain %1@example.com
		{"nobody@example.net", "550 5.1.1 User unknown", ""},   // error:nouser
		{"old@example.net", "550 5.1.1 Gone away", ""},         // error:5.1.1:550 text
		{"postmaster@example.com", "250", "example.com/alice"}, // aliases: postmaster → root → alice
		{"friend@partner.example", "250", ""},                  // relay-domains: To: RELAY, queued
		{"friend@elsewhere.example", "554 5.7.1", ""},          // still no open relay
		{"x@dead.example", "550 5.1.2 Host unknown", ""},       // mailertable error:
	}
	for _, c := range cases {
		got := trySend(t, "127.0.0.2", mx, "sender@remote.example", c.rcpt)
		if !strings.HasPrefix(got, c.reply) {
			t.Errorf("RCPT %s: got %q, want %q", c.rcpt, got, c.reply)
		}
	}
	counts := map[string]int{}
	for _, c := range cases {
		if c.mailbox != "" {
			counts[c.mailbox]++
		}
	}
	for box, n := range counts {
		files, _ := os.ReadDir(filepath.Join(cfg.DataDir, "mail", box, "new"))
		if len(files) != n {
			t.Errorf("%s has %d messages, want %d", box, len(files), n)
		}
	}
}

// TestImportSendmailKeepsExistingFiles: running the import again over a
// configuration edited since (or over the one a package installed) is
// refused with a message naming the files, and nothing is changed; with
// --force the files are written anew.
func TestImportSendmailKeepsExistingFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "conf")
	args := []string{"import", "sendmail", "--from", etcMail, "--out", out, "--data-dir", filepath.Join(out, "data")}
	if stdout, stderr, code := runPopgate(t, args...); code != 0 {
		t.Fatalf("first import exited %d\n%s\n%s", code, stdout, stderr)
	}
	cfg := filepath.Join(out, "popgate.toml")
	edited := readText(t, cfg) + "\n[pop3]\nlisten = [\"0.0.0.0:110\"]\n"
	writeFile(t, out, "popgate.toml", edited)
	aliases := readText(t, filepath.Join(out, "aliases"))
	stdout, stderr, code := runPopgate(t, args...)
	if code != 1 || !strings.Contains(stderr, cfg) || !strings.Contains(stderr, "already exist(s)") || !strings.Contains(stderr, "--force") {
		t.Errorf("second import: exit %d, want 1 naming %s and --force\n%s\n%s", code, cfg, stdout, stderr)
	}
	if readText(t, cfg) != edited || readText(t, filepath.Join(out, "aliases")) != aliases {
		t.Error("a refused import changed the files")
	}
	// Only the configuration there (the package's): refused as well.
	os.Remove(filepath.Join(out, "access"))
	os.Remove(filepath.Join(out, "aliases"))
	if _, stderr, code := runPopgate(t, args...); code != 1 || !strings.Contains(stderr, cfg) {
		t.Errorf("import over a lone popgate.toml: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "access")); err == nil {
		t.Error("a refused import wrote access")
	}
	if stdout, stderr, code := runPopgate(t, append(args, "--force")...); code != 0 {
		t.Fatalf("import --force exited %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(readText(t, cfg), "[pop3]") || readText(t, filepath.Join(out, "aliases")) == "" {
		t.Error("import --force did not write the files anew")
	}
}

// TestImportSendmailBadInput: usage mistakes and a tree with nothing to
// import are clear errors, and nothing is written.
func TestImportSendmailBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := runPopgate(t, "import", "sendmail", "--from", etcMail); code != 2 || !strings.Contains(stderr, "--out DIR") {
		t.Errorf("no --out: %d %q", code, stderr)
	}
	if _, stderr, code := runPopgate(t, "import", "sendmail", "--from", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "o")); code != 1 || !strings.Contains(stderr, "is not a directory") {
		t.Errorf("missing --from: %d %q", code, stderr)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, empty, "local-host-names", "# nothing\n[192.0.2.1]\n")
	if _, stderr, code := runPopgate(t, "import", "sendmail", "--from", empty, "--out", filepath.Join(dir, "o")); code != 1 || !strings.Contains(stderr, "no local domain") {
		t.Errorf("no domains: %d %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); err == nil {
		t.Error("output written for a failed import")
	}
	writeFile(t, empty, "access", strings.Repeat("x", maxImportLine+1)+" RELAY\n")
	writeFile(t, empty, "local-host-names", "example.com\n")
	if _, stderr, code := runPopgate(t, "import", "sendmail", "--from", empty, "--out", filepath.Join(dir, "o")); code != 1 || !strings.Contains(stderr, "access:1") {
		t.Errorf("over-long line: %d %q", code, stderr)
	}
}

func TestMailerHost(t *testing.T) {
	good := []struct {
		in, want string
		direct   bool
	}{
		{"[mx.example.net]", "mx.example.net:25", true},
		{"mx.Example.net", "mx.example.net:25", false},
		{"hub.example:2526", "hub.example:2526", false},
		{"[192.0.2.1]:2525", "192.0.2.1:2525", true},
		{"[IPv6:2001:db8::1]", "[2001:db8::1]:25", true},
		{"192.0.2.7", "192.0.2.7:25", true},
	}
	for _, c := range good {
		got, direct, err := mailerHost(c.in)
		if err != nil || got != c.want || direct != c.direct {
			t.Errorf("mailerHost(%q) = %q %v %v, want %q %v", c.in, got, direct, err, c.want, c.direct)
		}
	}
	for _, in := range []string{"", "[mx", "[mx]x", "a:b:c", "host:", "host:99999x", "a b", "[]"} {
		if got, _, err := mailerHost(in); err == nil {
			t.Errorf("mailerHost(%q) = %q, want an error", in, got)
		}
	}
}

func TestErrorRule(t *testing.T) {
	cases := map[string]string{
		"error:nouser":                "ERROR:5.1.1:550 User unknown",
		"error:NoUser No such person": "ERROR:5.1.1:550 No such person",
		"error:5.7.1:550 Go away":     "ERROR:5.7.1:550 Go away",
		"error:550 Go away":           "ERROR:550 Go away",
	}
	for in, want := range cases {
		if got, err := errorRule(in); err != nil || got != want {
			t.Errorf("errorRule(%q) = %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"error:", "error:oops", "error:5.7.1:55 x"} {
		if got, err := errorRule(in); err == nil {
			t.Errorf("errorRule(%q) = %q, want an error", in, got)
		}
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTOMLQuote(t *testing.T) {
	for _, s := range []string{"plain", `a"b\c`, "bell\a", "tab\tnl\n", "del\x7f", "ünïcode"} {
		var v struct{ K string }
		if _, err := toml.Decode("K = "+tomlQuote(s), &v); err != nil || v.K != s {
			t.Errorf("tomlQuote(%q) = %s: decodes to %q, %v", s, tomlQuote(s), v.K, err)
		}
	}
}
