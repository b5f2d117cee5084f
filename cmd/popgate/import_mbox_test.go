package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
)

const (
	uwInternal = "From MAILER-DAEMON Mon Dec  7 09:00:00 2026\nDate: 07 Dec 2026 09:00:00 +0000\nFrom: Mail System Internal Data <MAILER-DAEMON@mx>\n" +
		"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1765098000 0000000003\n\nThis text is part of the internal format of your mail folder.\n\n"
	spoolMsg1 = "From bob@example.org Mon Dec  7 10:00:00 2026\nSubject: one\nX-UIDL: 0123456789abcdef0123456789abcdef\nStatus: RO\n\nhello\n>From quoted, as mail.local wrote it\n\n"
	spoolMsg2 = "From carol@example.org Mon Dec  7 11:00:00 2026\nSubject: two (no X-UIDL)\n\nsecond\n\n"
	spoolMsg3 = "From dave@example.org Mon Dec  7 12:00:00 2026\nSubject: three\nX-UIDL: 0123456789abcdef0123456789abcdef\n\nsame X-UIDL as one\n\n"
	spoolMsg4 = "From erin@example.org Mon Dec  7 13:00:00 2026\nSubject: four\nX-UIDL: bad uidl with spaces\n\nfour\n\n"
)

// importEnv is a data directory with the users of testConfig and a
// configuration file naming it.
func importEnv(t *testing.T) (dir, cfgFile string) {
	t.Helper()
	dir = t.TempDir()
	testConfig(t, dir) // writes dir/users: alice and bob @example.com
	cfgFile = filepath.Join(dir, "popgate.toml")
	toml := "hostname = \"mx.example.com\"\ndomains = [\"example.com\"]\ndata_dir = \"" + dir + "\"\n"
	if err := os.WriteFile(cfgFile, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, cfgFile
}

// runCLI runs popgate with args in-process, as main does.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func writeSpool(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// popUIDLs logs in as user over a real POP3 listener and returns the UIDL
// listing and the text of the first message, which it deletes if dele.
func popUIDLs(t *testing.T, addr, user, pass string, dele bool) (uids []string, first string) {
	t.Helper()
	c := pop3test.DialFrom(t, "127.0.0.1", addr)
	c.Login(user, pass)
	uids = c.UIDL()
	if len(uids) > 0 {
		first = c.Retr(1)
		if dele {
			c.Expect("DELE 1", "+OK")
		}
	}
	c.Expect("QUIT", "+OK")
	return uids, first
}

// TestImportMboxKeepsUIDLs: after `popgate import mbox`, a POP3 UIDL over a
// real listener lists qpopper's X-UIDLs in spool order, with new UIDLs for
// the messages without a usable one; the spool file is untouched; running
// it again imports nothing, not even a message deleted since.
func TestImportMboxKeepsUIDLs(t *testing.T) {
	dir, cfgFile := importEnv(t)
	spool := filepath.Join(dir, "alice-spool")
	content := uwInternal + spoolMsg1 + spoolMsg2 + spoolMsg3 + spoolMsg4
	writeSpool(t, spool, content)

	code, out, errOut := runCLI(t, "import", "mbox", "--config", cfgFile, "alice", spool)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "4 imported, 0 already there, 3 without a usable X-UIDL, 1 UW internal skipped") {
		t.Errorf("summary: %q", out)
	}
	if !strings.Contains(errOut, "repeats the one of the message at offset") || !strings.Contains(errOut, "is not a valid UIDL") {
		t.Errorf("warnings about the duplicate and the invalid X-UIDL missing: %q", errOut)
	}
	if b, _ := os.ReadFile(spool); string(b) != content {
		t.Error("the spool file changed")
	}
	if _, err := os.Stat(spool + ".lock"); !os.IsNotExist(err) {
		t.Errorf("dot-lock left behind: %v", err)
	}
	// The seen one is in cur/ with the seen flag.
	cur, _ := filepath.Glob(filepath.Join(dir, "mail", "example.com", "alice", "cur", "*:2,S"))
	if len(cur) != 1 {
		t.Errorf("cur/ seen messages: %q", cur)
	}

	s := startServer(t, testConfig(t, dir), &fakeClock{})
	pop := s.addr("pop3.listen")
	uids, first := popUIDLs(t, pop, "alice@example.com", "alice's secret", false)
	if len(uids) != 4 || uids[0] != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("UIDL = %q, want qpopper's X-UIDL first and 4 in all", uids)
	}
	for _, u := range uids[1:] {
		if len(u) != 32 || u == uids[0] {
			t.Errorf("new UIDL %q: want 32 hex characters, distinct", u)
		}
	}
	if uids[1] == uids[2] || uids[2] == uids[3] || uids[1] == uids[3] {
		t.Errorf("UIDLs not unique: %q", uids)
	}
	if want := strings.ReplaceAll(strings.SplitN(spoolMsg1, "\n", 2)[1], "\n", "\r\n"); first != strings.TrimSuffix(want, "\r\n") {
		t.Errorf("RETR 1 = %q, want %q", first, want)
	}

	again, _ := popUIDLs(t, pop, "alice@example.com", "alice's secret", true) // and delete the first
	if strings.Join(again, " ") != strings.Join(uids, " ") {
		t.Errorf("UIDLs changed between sessions: %q then %q", uids, again)
	}
	s.stop() // a restart keeps them too

	code, out, errOut = runCLI(t, "import", "mbox", "--config", cfgFile, "alice@example.com", spool)
	if code != 0 || !strings.Contains(out, " 0 imported, 4 already there") {
		t.Fatalf("second import: exit %d\n%s%s", code, out, errOut)
	}
	s = startServer(t, testConfig(t, dir), &fakeClock{})
	after, _ := popUIDLs(t, s.addr("pop3.listen"), "alice@example.com", "alice's secret", false)
	if strings.Join(after, " ") != strings.Join(uids[1:], " ") {
		t.Errorf("after deleting one and importing again: %q, want %q", after, uids[1:])
	}
}

// TestImportMboxResumes: an import cut short (messages stored, the import
// record not yet synced, a half-written file in tmp/) is completed by the
// next run, which imports only what is missing and removes the leftover.
func TestImportMboxResumes(t *testing.T) {
	dir, cfgFile := importEnv(t)
	spool := filepath.Join(dir, "spool")
	writeSpool(t, spool, spoolMsg1+spoolMsg2)
	if code, out, errOut := runCLI(t, "import", "mbox", "--config", cfgFile, "alice", spool); code != 0 {
		t.Fatalf("import: %d %s%s", code, out, errOut)
	}
	mbdir := filepath.Join(dir, "mail", "example.com", "alice")
	if err := os.Remove(filepath.Join(mbdir, "popgate-imported")); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(mbdir, "tmp", "import.1796637600.I3P1Q1.mx")
	writeSpool(t, leftover, "Subject: half")
	writeSpool(t, spool, spoolMsg1+spoolMsg2+spoolMsg4)
	code, out, errOut := runCLI(t, "import", "mbox", "--config", cfgFile, "alice", spool)
	if code != 0 || !strings.Contains(out, " 1 imported, 2 already there") {
		t.Fatalf("resumed import: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("half-written file still in tmp/: %v", err)
	}
}

// TestImportMboxBadInput: bad spool files and arguments are refused with
// a message saying where, and nothing reaches the maildir.
func TestImportMboxBadInput(t *testing.T) {
	dir, cfgFile := importEnv(t)
	tests := []struct {
		name, content, want string
	}{
		{"not an mbox", "Subject: hi\n\nno From line\n", "not an mbox"},
		{"binary file", "\x7fELF\x02\x01\x01\x00\x00\x00", "binary data (NUL byte) at byte offset 7"},
		{"truncated message", spoolMsg1 + "From bob@example.org Mon Dec  7 10:00:00 2026\nSubject: cut", "truncated message at byte offset"},
		{"truncated in the header", spoolMsg1 + spoolMsg2 + "From bob@example.org Mon Dec  7 10:00:00 2026\nSubject: x\n", "truncated message"},
	}
	for _, tc := range tests {
		spool := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		writeSpool(t, spool, tc.content)
		code, out, errOut := runCLI(t, "import", "mbox", "--config", cfgFile, "alice", spool)
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "nothing imported") {
			t.Errorf("%s: exit %d, stdout %q stderr %q; want exit 1 and %q", tc.name, code, out, errOut, tc.want)
		}
	}
	for _, sub := range []string{"new", "cur"} {
		if n, _ := filepath.Glob(filepath.Join(dir, "mail", "example.com", "alice", sub, "*")); len(n) != 0 {
			t.Errorf("%s/ holds %q after refused imports", sub, n)
		}
	}
	good := filepath.Join(dir, "good")
	writeSpool(t, good, spoolMsg1)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"alice"}, 2, "usage: popgate import mbox"},
		{[]string{"nobody", good}, 1, "nobody@example.com is not a user"},
		{[]string{"alice", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"alice", dir}, 1, "not a regular file"},
		{[]string{"--lock-timeout", "soon", "alice", good}, 2, "invalid value"},
	} {
		code, _, errOut := runCLI(t, append([]string{"import", "mbox", "--config", cfgFile}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("import mbox %q: exit %d %q, want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestImportSpool: every spool file of a user is imported; names that are
// not users, dot-locks and qpopper's hidden temporary files are skipped,
// the former listed; a bad file fails alone.
func TestImportSpool(t *testing.T) {
	dir, cfgFile := importEnv(t)
	spool := filepath.Join(dir, "var-mail")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSpool(t, filepath.Join(spool, "alice"), spoolMsg1+spoolMsg2)
	writeSpool(t, filepath.Join(spool, "bob"), "not a spool file\n")
	writeSpool(t, filepath.Join(spool, "carol"), spoolMsg1)
	writeSpool(t, filepath.Join(spool, "root"), spoolMsg2)
	writeSpool(t, filepath.Join(spool, ".alice.pop"), "qpopper's copy")
	writeSpool(t, filepath.Join(spool, "zed.lock"), "")

	code, out, errOut := runCLI(t, "import", "spool", "--config", cfgFile, spool)
	if code != 1 || !strings.Contains(errOut, "bob: mbox: not an mbox") || !strings.Contains(errOut, "1 spool file(s) not imported: bob") {
		t.Errorf("exit %d, stderr %q: want bob reported", code, errOut)
	}
	if !strings.Contains(out, "-> alice@example.com: 2 imported") || !strings.Contains(out, "not users of example.com: carol root") {
		t.Errorf("stdout %q", out)
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "mail", "example.com", "*")); len(n) != 1 {
		t.Errorf("maildirs made: %q, want alice's only", n)
	}

	code, out, _ = runCLI(t, "import", "spool", "--config", cfgFile, "--domain", "other.example", spool)
	if code != 0 || !strings.Contains(out, "not users of other.example: alice bob carol root") {
		t.Errorf("--domain other.example: exit %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "import", "spool", "--config", cfgFile, filepath.Join(dir, "nope")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing spool dir: exit %d %q", code, errOut)
	}
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := newProgressBar(&b, true, "alice", 200)
	p.update(100)
	p.update(101) // same percentage: not redrawn
	p.update(200)
	p.done()
	if got := b.String(); got != "\ralice [===============               ]  50%\ralice [==============================] 100%\n" {
		t.Errorf("bar %q", got)
	}
	b.Reset()
	off := newProgressBar(&b, false, "alice", 200)
	off.update(100)
	off.done()
	if b.Len() != 0 {
		t.Errorf("bar drawn off a terminal: %q", b.String())
	}
}
