//go:build interop

package main

// Interop checks of the files under contrib/: the systemd unit with
// systemd-analyze, the fail2ban filter with fail2ban-regex against log
// lines the real server writes.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/popgate/popgate/smtp/smtptest"
)

// TestInteropSystemdUnit verifies contrib/systemd/popgate.service with
// systemd-analyze (package systemd): no warning from verify, with the
// freshly built binary in ExecStart, and an exposure score of at most 2.0
// from the offline security audit.
func TestInteropSystemdUnit(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	bin := filepath.Join(t.TempDir(), "popgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", "popgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("/usr/local/bin/popgate ")) {
		t.Fatal("the unit no longer runs /usr/local/bin/popgate: update this test")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "popgate.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/popgate"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify exits 0 on directives it ignores, so any output is a failure.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v (exposure above 2.0)\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for popgate.service: ([0-9.]+)`).FindSubmatch(out); m == nil {
		t.Errorf("no exposure level in:\n%s", out)
	} else {
		t.Logf("exposure level %s", m[1])
	}

	// The audit must be able to fail: the unit without its sandbox scores high.
	var bare []string
	for _, l := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(l, "[") || strings.HasPrefix(l, "Exec") || strings.HasPrefix(l, "Type=") ||
			strings.HasPrefix(l, "User=") || strings.HasPrefix(l, "Description=") {
			bare = append(bare, strings.ReplaceAll(l, "/usr/local/bin/popgate", bin))
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(bare, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput(); err == nil {
		t.Errorf("an unhardened unit passed the audit:\n%s", out)
	}
}

// TestInteropFail2banJail loads the jail and the filter into a copy of
// the system's fail2ban configuration: fail2ban-client must accept them,
// and the jail must read popgate's journal.
func TestInteropFail2banJail(t *testing.T) {
	client := need(t, "fail2ban-client")
	conf := t.TempDir()
	if err := os.CopyFS(conf, os.DirFS("/etc/fail2ban")); err != nil {
		t.Fatalf("copy /etc/fail2ban (package fail2ban): %v", err)
	}
	for _, f := range []string{"filter.d/popgate.conf", "jail.d/popgate.conf"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "fail2ban", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(client, "-c", conf, "-d").CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-client -d: %v\n%s", err, out)
	}
	for _, want := range []string{
		"['add', 'popgate', 'systemd']",
		"['set', 'popgate', 'addjournalmatch', '_SYSTEMD_UNIT=popgate.service']",
		"['set', 'popgate', 'maxretry', 5]",
		"--dports 25,110,465,587,995",
		"['start', 'popgate']",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("fail2ban-client -d lacks %s", want)
		}
	}
	if strings.Contains(string(out), "ERROR") {
		t.Errorf("fail2ban-client -d reports errors:\n%s", out)
	}
}

// f2bFailure tells, independently of the filter, whether a popgate text
// log line is a failure fail2ban should count: a refused POP3 login (bad
// credentials or throttled), a refused or throttled SMTP AUTH, or a relay
// attempt that was denied. It returns the client address from the line's
// fixed prefix (remote=, set by the server, not by the client).
func f2bFailure(line string) (string, bool) {
	m := regexp.MustCompile(`level=(?:INFO|WARN) msg="(pop3 login failed|smtp auth failed|smtp auth throttled|smtp relay denied)" proto=\w+ (?:listener=\w+ )?remote=(\S+) `).FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	if m[1] == "pop3 login failed" && !strings.HasSuffix(line, `reason="bad credentials"`) && !strings.HasSuffix(line, "reason=throttled") {
		return "", false
	}
	return m[2], true
}

// TestInteropFail2banFilter runs fail2ban-regex (package fail2ban) with
// contrib/fail2ban/filter.d/popgate.conf over the committed sample and
// over a log the real server writes now: it must match exactly the
// failure lines, with the right addresses, and never an address a client
// smuggled into a user name. POPGATE_WRITE_F2B_SAMPLE=1 rewrites the
// committed sample from the fresh log.
func TestInteropFail2banFilter(t *testing.T) {
	f2b := need(t, "fail2ban-regex")
	filter, err := filepath.Abs(filepath.Join("..", "..", "contrib", "fail2ban", "filter.d", "popgate.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sample := filepath.Join("..", "..", "contrib", "fail2ban", "testdata", "popgate.log")

	var fresh bytes.Buffer
	writeFail2banLog(t, &fresh)
	freshPath := filepath.Join(t.TempDir(), "popgate.log")
	if err := os.WriteFile(freshPath, fresh.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("POPGATE_WRITE_F2B_SAMPLE") != "" {
		if err := os.WriteFile(sample, fresh.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, logPath := range []string{sample, freshPath} {
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		var wantIPs []string
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, l := range lines {
			if ip, ok := f2bFailure(l); ok {
				wantIPs = append(wantIPs, ip)
			}
		}
		if len(wantIPs) < 8 || len(wantIPs) == len(lines) {
			t.Fatalf("%s: %d failure lines of %d: the sample must hold both kinds", logPath, len(wantIPs), len(lines))
		}
		for _, must := range []string{`msg="pop3 login ok"`, `reason="mailbox in use"`, `msg="smtp auth ok"`, `msg="auth failed"`, `ip=192.0.2.66`} {
			if !strings.Contains(string(data), must) {
				t.Errorf("%s lacks a line with %s to prove it is not matched", logPath, must)
			}
		}

		out, err := exec.Command(f2b, "-o", "ip", logPath, filter).CombinedOutput()
		if err != nil {
			t.Fatalf("fail2ban-regex -o ip %s: %v\n%s", logPath, err, out)
		}
		gotIPs := strings.Fields(string(out))
		slices.Sort(gotIPs)
		slices.Sort(wantIPs)
		if !slices.Equal(gotIPs, wantIPs) {
			t.Errorf("%s: fail2ban matched addresses\n%q\nwant\n%q", logPath, gotIPs, wantIPs)
		}
		if slices.Contains(gotIPs, "192.0.2.66") {
			t.Errorf("%s: a client got 192.0.2.66, which it wrote into a user name, banned", logPath)
		}

		// The summary agrees, and the date of every line was understood.
		out, err = exec.Command(f2b, logPath, filter).CombinedOutput()
		if err != nil {
			t.Fatalf("fail2ban-regex %s: %v\n%s", logPath, err, out)
		}
		m := regexp.MustCompile(`Lines: (\d+) lines, \d+ ignored, (\d+) matched, (\d+) missed`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no summary in:\n%s", out)
		}
		if n, _ := strconv.Atoi(string(m[2])); n != len(wantIPs) {
			t.Errorf("%s: %s lines matched, want %d\n%s", logPath, m[2], len(wantIPs), out)
		}
		if bytes.Contains(out, []byte("Date template hits:\n|- [# of hits] date format\n`-")) || !bytes.Contains(out, []byte(fmt.Sprintf("[%d] ", len(lines)))) {
			t.Errorf("%s: not every line's date was recognised\n%s", logPath, out)
		}
	}
}

// writeFail2banLog runs a real popgate whose text log goes to w, and
// drives it through the failures fail2ban should see and the successes it
// must ignore. 127.0.0.x stand for different clients.
func writeFail2banLog(t *testing.T, w io.Writer) {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Relay.Mirror = nil
	s, err := assemble(cfg, options{logger: newLogger(w, LogConfig{Format: "text", Level: "info"})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	pop, mx, sub := s.addr("pop3.listen"), s.addr("smtp.listen"), s.addr("smtp.submission")

	// Not failures: a good login, and a second session on a locked mailbox.
	held := pop3test.DialFrom(t, "127.0.0.2", pop)
	held.Expect("", "+OK")
	held.Expect("USER bob@example.com", "+OK")
	held.Expect("PASS bob-password", "+OK")
	c := pop3test.DialFrom(t, "127.0.0.2", pop)
	c.Expect("", "+OK")
	c.Expect("USER bob@example.com", "+OK")
	c.Expect("PASS bob-password", "-ERR [IN-USE]")
	c.Expect("QUIT", "+OK")
	held.Expect("QUIT", "+OK")

	// Wrong passwords from 127.0.0.3 until the limiter throttles it.
	// (A session is closed after its third error, so one login a session.)
	for _, pw := range []string{"guess1", "guess2", "guess3"} {
		c = pop3test.DialFrom(t, "127.0.0.3", pop)
		c.Expect("", "+OK")
		c.Expect("USER alice@example.com", "+OK")
		c.Expect("PASS "+pw, "-ERR")
		c.Expect("QUIT", "+OK")
	}
	// An unknown user, and a user name carrying a forged ip= attribute.
	c = pop3test.DialFrom(t, "127.0.0.4", pop)
	c.Expect("", "+OK")
	c.Expect("USER nobody@example.com", "+OK")
	c.Expect("PASS x", "-ERR")
	forged := `x" ip=192.0.2.66 reason=throttled`
	c.Expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+forged+"\x00pw")), "-ERR")
	c.Expect("QUIT", "+OK")

	// SMTP: relay denied, a local delivery, an unknown recipient.
	if got := trySend(t, "127.0.0.5", mx, "spammer@remote.example", "victim@elsewhere.example"); !strings.HasPrefix(got, "554") {
		t.Fatalf("relay: %q", got)
	}
	if got := trySend(t, "127.0.0.5", mx, "friend@remote.example", "alice@example.com"); !strings.HasPrefix(got, "250") {
		t.Fatalf("local delivery: %q", got)
	}
	if got := trySend(t, "127.0.0.5", mx, "friend@remote.example", "nobody@example.com"); !strings.HasPrefix(got, "550") {
		t.Fatalf("unknown recipient: %q", got)
	}
	// SMTP AUTH: wrong, forged, then right from another client.
	m := smtptest.DialFrom(t, "127.0.0.6", sub)
	m.Hello("client.example.net")
	m.Expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice@example.com\x00wrong")), "535")
	m.Expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+forged+"\x00pw")), "")
	m.Expect("QUIT", "221")
	m = smtptest.DialFrom(t, "127.0.0.7", sub)
	m.Hello("client.example.net")
	m.AuthPlain("bob@example.com", "bob-password")
	m.Expect("QUIT", "221")
}
