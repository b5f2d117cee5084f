package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popgate/popgate/smtp/pickup"
)

// sendmailSetup writes a configuration for example.com (users alice and
// bob, the aliases file postmaster: alice) into a fresh data directory.
func sendmailSetup(t testing.TB, extra string) (path string, dataDir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgsm") // short: Unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("alice@example.com:{PLAIN}a\nbob@example.com:{PLAIN}b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "aliases"), []byte("postmaster: alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "popgate.toml")
	cfg := fmt.Sprintf(`hostname = "mx.example.com"
domains = ["example.com"]
data_dir = %q
[users]
aliases = %q
[pop3]
listen = ["127.0.0.1:0"]
[smtp]
listen = ["127.0.0.1:0"]
submission = []
[queue]
smarthost = "127.0.0.1:1"
%s`, dir, filepath.Join(dir, "aliases"), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// startFromFile serves the configuration at path in-process; a reload
// re-reads that file.
func startFromFile(t testing.TB, path string) *testServer {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := assemble(cfg, options{configPath: path, logger: slog.New(slog.NewTextHandler(testLogOut(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{services: s, cancel: cancel, done: make(chan error, 1), reload: make(chan os.Signal, 1)}
	go func() { ts.done <- s.run(ctx, ts.reload) }()
	t.Cleanup(ts.stop)
	return ts
}

// sendmailRun runs the sendmail command in-process as the binary would.
func sendmailRun(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	code = run(context.Background(), e, append([]string{"sendmail"}, args...))
	return code, out.String(), errb.String()
}

// mailIn returns the messages in a user's maildir new/ (stored with LF
// line ends, as maildir readers expect).
func mailIn(t *testing.T, dataDir, user string) []string {
	t.Helper()
	dir := filepath.Join(dataDir, "mail", "example.com", user, "new")
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var msgs []string
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(b))
	}
	return msgs
}

func TestSendmailThroughRunningServer(t *testing.T) {
	path, data := sendmailSetup(t, "")
	startFromFile(t, path)
	code, _, stderr := sendmailRun(t, "To: Alice <alice@example.com>\nBcc: bob\nSubject: -t -i\n\nline\n.\nafter the dot\n",
		"--config", path, "-t", "-i", "-v")
	if code != 0 || !strings.Contains(stderr, "accepted as") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, user := range []string{"alice", "bob"} {
		msgs := mailIn(t, data, user)
		if len(msgs) != 1 {
			t.Fatalf("%s has %d messages", user, len(msgs))
		}
		m := msgs[0]
		if !strings.Contains(m, fmt.Sprintf("(popgate, from userid %d ", os.Getuid())) || strings.Contains(m, "Bcc:") ||
			!strings.Contains(m, "\nline\n.\nafter the dot\n") {
			t.Errorf("%s's copy:\n%s", user, m)
		}
	}
	// Without -i a lone dot ends the message; recipients from arguments,
	// aliases resolved.
	code, _, stderr = sendmailRun(t, "Subject: dot\n\nbefore\n.\nlost\n", "--config", path, "postmaster")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	msgs := mailIn(t, data, "alice")
	if len(msgs) != 2 {
		t.Fatalf("alice has %d messages", len(msgs))
	}
	var dot string
	for _, m := range msgs {
		if strings.Contains(m, "Subject: dot") {
			dot = m
		}
	}
	if !strings.HasSuffix(dot, "\n\nbefore\n") {
		t.Errorf("message did not end at the lone dot:\n%q", dot)
	}
}

func TestSendmailExitCodes(t *testing.T) {
	path, _ := sendmailSetup(t, "")
	small, _ := sendmailSetup(t, "")
	b, _ := os.ReadFile(small)
	if err := os.WriteFile(small, bytes.Replace(b, []byte("submission = []"), []byte("submission = []\nmax_message_bytes = 1024"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	startFromFile(t, path)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"unknown user", "x\n", []string{"--config", path, "ghost"}, 67, "ghost@example.com: user unknown"},
		{"no recipients", "x\n", []string{"--config", path}, 64, "no recipients"},
		{"-t without recipients", "Subject: x\n\n", []string{"--config", path, "-t"}, 64, "no recipients"},
		{"unknown flag", "", []string{"--config", path, "-k", "alice"}, 64, "unknown option -k"},
		{"daemon mode", "", []string{"--config", path, "-bd"}, 64, "popgate serve"},
		{"routing trick", "x\n", []string{"--config", path, "bob%remote.example@example.com"}, 65, "routing"},
		{"NUL in message", "a\x00b\n", []string{"--config", path, "alice"}, 65, "NUL"},
		{"too large", strings.Repeat("x", 2000), []string{"--config", small, "alice"}, 65, "too large"},
		{"missing config", "", []string{"--config", "/nonexistent/popgate.toml", "alice"}, 78, "cannot read"},
	}
	for _, tt := range tests {
		code, _, stderr := sendmailRun(t, tt.stdin, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, stderr, tt.code, tt.msg)
		}
	}
}

func TestSendmailServerDownThenDrainAtStart(t *testing.T) {
	path, data := sendmailSetup(t, "")
	code, _, stderr := sendmailRun(t, "Subject: while down\n\nhello\n", "--config", path, "-v", "alice")
	if code != 0 || !strings.Contains(stderr, "left in the maildrop") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	drop := filepath.Join(data, "maildrop")
	if es, _ := os.ReadDir(drop); len(es) != 1 {
		t.Fatalf("maildrop holds %d files", len(es))
	}
	code, out, _ := sendmailRun(t, "", "--config", path, "-bp")
	if code != 0 || !strings.Contains(out, "1 message(s) wait in the maildrop") {
		t.Errorf("mailq while down: %d %q", code, out)
	}
	startFromFile(t, path)
	waitFor(t, "the maildrop drained into alice's maildir", func() bool { return len(mailIn(t, data, "alice")) == 1 })
	waitFor(t, "the maildrop file removed", func() bool { es, _ := os.ReadDir(drop); return len(es) == 0 })
	if m := mailIn(t, data, "alice")[0]; !strings.Contains(m, "via maildrop)") || !strings.Contains(m, "\n\nhello\n") {
		t.Errorf("drained message:\n%s", m)
	}
}

func TestSendmailNowhereToGo(t *testing.T) {
	// A maildrop under a plain file cannot be created, even by root.
	path, _ := sendmailSetup(t, "[sendmail]\nmaildrop = \"/etc/hostname/maildrop\"\n")
	code, _, stderr := sendmailRun(t, "x\n", "--config", path, "alice")
	if code != 75 || !strings.Contains(stderr, "NOT sent") {
		t.Fatalf("exit %d, %q; want EX_TEMPFAIL and a clear message", code, stderr)
	}
}

func TestSendmailQueueAliasesAndSMTP(t *testing.T) {
	path, data := sendmailSetup(t, "")
	ts := startFromFile(t, path)
	if code, out, _ := sendmailRun(t, "", "--config", path, "-bp"); code != 0 || !strings.Contains(out, "Mail queue is empty") {
		t.Errorf("-bp: %d %q", code, out)
	}
	if code, _, _ := sendmailRun(t, "x\n", "--config", path, "someone@remote.example"); code != 0 {
		t.Fatalf("remote send: exit %d", code)
	}
	if code, out, _ := sendmailRun(t, "", "--config", path, "-bp"); code != 0 || !strings.Contains(out, "someone@remote.example") {
		t.Errorf("-bp after a remote message: %d %q", code, out)
	}
	if code, _, stderr := sendmailRun(t, "", "--config", path, "-q"); code != 0 {
		t.Errorf("-q: %d %s", code, stderr)
	}

	// newaliases: a new alias is validated and the server reloads.
	if err := os.WriteFile(filepath.Join(data, "aliases"), []byte("postmaster: alice\ninfo: bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := sendmailRun(t, "", "--config", path, "-bi")
	if code != 0 || !strings.Contains(out, "2 aliases") || !strings.Contains(out, "reloads") {
		t.Fatalf("-bi: %d %q", code, out)
	}
	waitFor(t, "the reload", func() bool { return ts.relay.Load().aliases.Len() == 2 })
	if code, _, stderr := sendmailRun(t, "x\n", "--config", path, "info"); code != 0 {
		t.Fatalf("send to the new alias: %d %s", code, stderr)
	}
	if len(mailIn(t, data, "bob")) != 1 {
		t.Error("the new alias did not reach bob")
	}
	if err := os.WriteFile(filepath.Join(data, "aliases"), []byte("broken line without colon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := sendmailRun(t, "", "--config", path, "-bi"); code != 65 {
		t.Errorf("-bi on a broken file: %d %s", code, stderr)
	}
	if ts.relay.Load().aliases.Len() != 2 {
		t.Error("a broken aliases file replaced the running one")
	}

	// -bs: SMTP on stdin/stdout, each message handed over like -bm.
	script := "EHLO local\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: bs\r\n\r\nvia -bs\r\n.\r\n" +
		"MAIL FROM:<>\r\nRCPT TO:<ghost@example.com>\r\nDATA\r\nx\r\n.\r\nRCPT TO:<x@example.com>\r\nQUIT\r\n"
	code, out, _ = sendmailRun(t, script, "--config", path, "-bs")
	if code != 0 {
		t.Fatalf("-bs exit %d", code)
	}
	for _, want := range []string{"220 mx.example.com", "250 2.0.0 OK: accepted as", "550 5.1.1 ghost@example.com: user unknown", "5.5.1 Missing MAIL FROM", "221 "} {
		if !strings.Contains(out, want) {
			t.Errorf("-bs transcript lacks %q:\n%s", want, out)
		}
	}
	found := false
	for _, m := range mailIn(t, data, "alice") {
		found = found || strings.Contains(m, "Subject: bs\n")
	}
	if !found {
		t.Error("the -bs message did not arrive")
	}
}

// TestSendmailTemporaryRefusalGoesToMaildrop: a server that answers "try
// later" does not make the caller lose the mail: it waits in the maildrop.
// A permanent refusal is reported, and nothing is left behind.
func TestSendmailTemporaryRefusalGoesToMaildrop(t *testing.T) {
	path, data := sendmailSetup(t, "")
	reply := make(chan string, 1)
	ln, err := net.Listen("unix", filepath.Join(data, "submit.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(c).ReadString('\n')
			_, _ = c.Write([]byte(<-reply + "\n"))
			c.Close()
		}
	}()
	drop := filepath.Join(data, "maildrop")
	if err := pickup.EnsureMaildrop(drop); err != nil {
		t.Fatal(err)
	}
	reply <- `{"error":"too many local submissions at once, try again later","code":75}`
	code, _, stderr := sendmailRun(t, "x\n", "--config", path, "-v", "alice")
	if code != 0 || !strings.Contains(stderr, "left in the maildrop") {
		t.Fatalf("temporary refusal: exit %d, %s", code, stderr)
	}
	if es, _ := os.ReadDir(drop); len(es) != 1 {
		t.Fatalf("maildrop holds %d files", len(es))
	}
	reply <- `{"error":"ghost@example.com: user unknown","code":67}`
	code, _, stderr = sendmailRun(t, "x\n", "--config", path, "ghost")
	if code != 67 || !strings.Contains(stderr, "user unknown") {
		t.Fatalf("permanent refusal: exit %d, %s", code, stderr)
	}
	if es, _ := os.ReadDir(drop); len(es) != 1 {
		t.Fatalf("a refused message went to the maildrop")
	}
}
