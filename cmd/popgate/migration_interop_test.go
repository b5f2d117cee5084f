//go:build interop

package main

// The walk-through of docs/operations.md, "Migrating from sendmail +
// qpopper, start to end", followed step by step with the real binary on a
// fake machine: a directory stands for /, with sendmail's /etc/mail, an
// /etc/passwd and /etc/shadow whose hashes mkpasswd made, and qpopper's
// spools in /var/mail. Every check is one a newcomer would make at that
// step; the clients are real ones (fetchmail, bsd-mailx, swaks, Python's
// poplib) wherever the walk-through names or implies one.

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// oldBox is the machine being migrated; every path is under root, which
// stands for /.
type oldBox struct {
	root                               string
	etcMail, passwd, shadow, varMail   string
	etcPopgate, dataDir, cfg, sendmail string
	alicePW, bobPW, carolPW            string
	aliceUIDLs, bobUIDLs               []string
}

// Bob's spool as qpopper left it: both messages listed once (X-UIDL), the
// first one read.
var bobSpool = []struct{ uidl, text string }{
	{"b0b0000000000000000000000000aaaa", "From erin@example.org Fri Dec  4 08:00:00 2026\nSubject: for bob\nX-UIDL: b0b0000000000000000000000000aaaa\nStatus: RO\n\nbob's first\n\n"},
	{"<20261205.bob@qpopper>", "From frank@example.org Sat Dec  5 08:00:00 2026\nSubject: bob again\nX-UIDL: <20261205.bob@qpopper>\nStatus: O\n\nbob's second\n\n"},
}

// aliceLate arrives in alice's spool after the trial of step 3, while
// sendmail and qpopper still run, and is listed once by qpopper.
const aliceLateUIDL = "5a1ce1a7e0000000000000000000beef"

const aliceLate = "From grace@example.org Mon Dec  7 12:00:00 2026\nSubject: late\nX-UIDL: " + aliceLateUIDL + "\nStatus: O\n\nlate body\n\n"

// newOldBox builds the machine: sendmail's configuration from
// testdata/etc-mail, accounts with hashes from mkpasswd (yescrypt for
// alice, SHA-512 for bob, carol locked, root and mail system accounts),
// and spools for alice, bob and root (root is no popgate user).
func newOldBox(t *testing.T) *oldBox {
	t.Helper()
	root := t.TempDir()
	b := &oldBox{
		root:       root,
		etcMail:    filepath.Join(root, "etc", "mail"),
		passwd:     filepath.Join(root, "etc", "passwd"),
		shadow:     filepath.Join(root, "etc", "shadow"),
		varMail:    filepath.Join(root, "var", "mail"),
		etcPopgate: filepath.Join(root, "etc", "popgate"),
		dataDir:    filepath.Join(root, "var", "lib", "popgate"),
		sendmail:   filepath.Join(root, "usr", "sbin", "sendmail"),
		alicePW:    "alice's old secret",
		bobPW:      "B0b's pässword 2019",
		carolPW:    "carol left",
	}
	b.cfg = filepath.Join(b.etcPopgate, "popgate.toml")
	for _, d := range []string{b.etcMail, b.varMail, filepath.Dir(b.sendmail), filepath.Join(root, "usr", "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(etcMail)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		writeFile(t, b.etcMail, e.Name(), readText(t, filepath.Join(etcMail, e.Name())))
	}

	mk := need(t, "mkpasswd")
	hash := func(method, pw string) string {
		cmd := exec.Command(mk, "-m", method, "--stdin")
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mkpasswd -m %s: %v", method, err)
		}
		return strings.TrimSpace(string(out))
	}
	writeFile(t, filepath.Dir(b.passwd), "passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"+
		"mail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n"+
		"alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"+
		"bob:x:1001:1001:Bob,,,:/home/bob:/bin/bash\n"+
		"carol:x:1002:1002:Carol (left),,,:/home/carol:/usr/sbin/nologin\n")
	writeFile(t, filepath.Dir(b.shadow), "shadow", "root:"+hash("sha512crypt", "root pw")+":20000:0:99999:7:::\n"+
		"daemon:*:20000:0:99999:7:::\n"+
		"mail:*:20000:0:99999:7:::\n"+
		"alice:"+hash("yescrypt", b.alicePW)+":20000:0:99999:7:::\n"+
		"bob:"+hash("sha512crypt", b.bobPW)+":20000:0:99999:7:::\n"+
		"carol:!"+hash("sha512crypt", b.carolPW)+":20000:0:99999:7:::\n")

	// alice's spool is the one TestInteropImportUIDLContinuity uses.
	var alice, bob strings.Builder
	for _, m := range qpopperSpool {
		alice.WriteString(m.text)
		b.aliceUIDLs = append(b.aliceUIDLs, m.uidl)
	}
	for _, m := range bobSpool {
		bob.WriteString(m.text)
		b.bobUIDLs = append(b.bobUIDLs, m.uidl)
	}
	writeSpool(t, filepath.Join(b.varMail, "alice"), alice.String())
	writeSpool(t, filepath.Join(b.varMail, "bob"), bob.String())
	writeSpool(t, filepath.Join(b.varMail, "root"), "From root@oldbox Sun Dec  6 06:25:01 2026\nSubject: Cron <root@oldbox> run-parts\n\nlogrotate done\n\n")
	return b
}

// tomlSet is one edit of a configuration file: key = value in table ("" is
// the top level, before the first table).
type tomlSet struct{ table, key, value string }

// editTOML makes the edits the way an operator edits popgate.toml by hand:
// a key already in its table is replaced, a new key goes right under the
// table's header (top-level keys before the first table), a missing table
// is added at the end.
func editTOML(t *testing.T, path string, edits []tomlSet) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(readText(t, path), "\n"), "\n")
	isHeader := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "[") }
	for _, e := range edits {
		kv := e.key + " = " + e.value
		start := 0 // first line of the table's body
		if e.table != "" {
			start = slices.IndexFunc(lines, func(l string) bool {
				return strings.HasPrefix(strings.TrimSpace(l), "["+e.table+"]")
			})
			if start < 0 {
				lines = append(lines, "", "["+e.table+"]", kv)
				continue
			}
			start++
		}
		end := start
		for end < len(lines) && !isHeader(lines[end]) {
			end++
		}
		keyRe := regexp.MustCompile(`^\s*` + regexp.QuoteMeta(e.key) + `\s*=`)
		if i := slices.IndexFunc(lines[start:end], keyRe.MatchString); i >= 0 {
			lines[start+i] = kv
			continue
		}
		at := start
		if e.table == "" {
			at = end // after the header comments, before the first table
		}
		lines = slices.Insert(lines, at, kv)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fetchmailKeep polls user's mailbox once as fetchmail in UIDL mode with
// keep, with its .fetchids in idfile, into files under got, and returns
// how many messages got holds.
func fetchmailKeep(t *testing.T, pop, user, pass, idfile, got string) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(pop)
	rc := fmt.Sprintf("set no bouncemail\npoll %s protocol pop3 port %s uidl auth password timeout 20\n"+
		"  user %q there with password %q is \"alice\" here\n"+
		"  sslproto '' keep\n  mda \"/bin/sh -c 'cat > %s/msg.$$'\"\n", host, port, user, pass, got)
	rcfile := filepath.Join(t.TempDir(), "fetchmailrc")
	if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	// A private pid file: as root, fetchmail otherwise locks
	// /var/run/fetchmail.pid and refuses to run beside any other test's.
	pidfile := filepath.Join(filepath.Dir(rcfile), "fetchmail.pid")
	out, err := runCmd(t, "", need(t, "fetchmail"), "-f", rcfile, "-i", idfile, "--pidfile", pidfile, "--nosyslog")
	if exitCode(err) != 0 && exitCode(err) != 1 { // 1: no new mail
		t.Fatalf("fetchmail: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(got, "msg.*"))
	return len(files)
}

// mailboxWith returns the messages of a maildir (new/ and cur/) that
// contain marker.
func mailboxWith(t *testing.T, maildir, marker string) []string {
	t.Helper()
	var found []string
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(maildir, sub, "*"))
		for _, f := range files {
			if text := readText(t, f); strings.Contains(text, marker) {
				found = append(found, text)
			}
		}
	}
	return found
}

// popgate runs the binary with args and returns its output (standard
// output and error, interleaved as a terminal shows them), its standard
// error alone, and its exit code.
func popgate(t *testing.T, args ...string) (out, stderr string, code int) {
	t.Helper()
	var all lockedBuffer // written by the stdout and the stderr copier
	var errb strings.Builder
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout = &all
	cmd.Stderr = io.MultiWriter(&all, &errb)
	code = exitCode(cmd.Run())
	if code < 0 {
		t.Fatalf("popgate %v: did not run", args)
	}
	return all.String(), errb.String(), code
}

// mustContain fails the test for every want that text lacks.
func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestInteropMigrationWalkthrough(t *testing.T) {
	for _, p := range []string{"mkpasswd", "fetchmail", "mail", "swaks", "smtp-sink", "python3", "openssl", "db5.3_dump"} {
		need(t, p)
	}
	b := newOldBox(t)
	spoolBefore := map[string]string{}
	for _, n := range []string{"alice", "bob", "root"} {
		spoolBefore[n] = readText(t, filepath.Join(b.varMail, n))
	}

	// Step 1: configuration from /etc/mail.
	out, stderr, code := popgate(t, "import", "sendmail", "--from", b.etcMail, "--out", b.etcPopgate, "--data-dir", b.dataDir)
	if code != 0 {
		t.Fatalf("step 1: import sendmail: exit %d\n%s", code, out)
	}
	mustContain(t, "step 1: import sendmail's output", out, "wrote "+b.cfg)
	// Lines not carried over are listed on standard error, for the
	// operator to decide.
	mustContain(t, "step 1: import sendmail's standard error", stderr,
		"aliases:7: popgate delivers only to mailboxes, not to programs or files",
		"mailertable:6: mailer \"uucp-dom\" has no popgate counterpart",
		"virtusertable:8: popgate does not forward to remote addresses")
	conf := readText(t, b.cfg)
	// The users' domain is first: the next imports give it to their users.
	if !strings.Contains(conf, "\ndomains = [\"example.com\", ") {
		t.Fatalf("step 1: example.com is not the first domain:\n%s", conf)
	}
	for _, f := range []string{"access", "aliases"} {
		if _, err := os.Stat(filepath.Join(b.etcPopgate, f)); err != nil {
			t.Errorf("step 1: %v", err)
		}
	}
	// Not in the walk-through: this fake machine must not send anywhere
	// but loopback. sendmail's smart host (DSsmtp:[smtp.isp.example]) is
	// replaced by an smtp-sink before anything can be queued, and the
	// trial's listeners are on free ports instead of 1110/2525/2587.
	sinkAddr, sinkDir := freeAddr(t), t.TempDir()
	sink := exec.Command(need(t, "smtp-sink"), "-u", "root", "-d", filepath.Join(sinkDir, "msg."), sinkAddr, "100")
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Process.Kill(); _ = sink.Wait() })
	waitListening(t, sinkAddr)
	editTOML(t, b.cfg, []tomlSet{
		{"queue", "smarthost", fmt.Sprintf("%q", sinkAddr)},
		{"pop3", "listen", `["127.0.0.1:0"]`},
		{"smtp", "listen", `["127.0.0.1:0"]`},
		{"smtp", "submission", `["127.0.0.1:0"]`},
	})

	// Step 2: users with the passwords they have.
	out, _, code = popgate(t, "import", "passwd", "--config", b.cfg, "--passwd", b.passwd, "--shadow", b.shadow)
	if code != 0 {
		t.Fatalf("step 2: import passwd: exit %d\n%s", code, out)
	}
	mustContain(t, "step 2: import passwd's report", out,
		"imported alice@example.com (yescrypt)", "imported bob@example.com (SHA-512-crypt)",
		"skipped  carol (passwd line 6): locked", "skipped  mail (passwd line 3): system account",
		"skipped  root (passwd line 1): system account",
		"2 imported, 0 already present, 4 skipped; users file "+filepath.Join(b.dataDir, "users"))
	out, _, code = popgate(t, "user", "list", "--config", b.cfg)
	if code != 0 || out != "alice@example.com\nbob@example.com\n" {
		t.Fatalf("step 2: user list: exit %d\n%s", code, out)
	}

	// Step 3: check, then a trial on loopback while sendmail and qpopper
	// still run.
	if out, _, code := popgate(t, "check", "--config", b.cfg); code != 0 || !strings.Contains(out, "configuration ok") {
		t.Fatalf("step 3: check: exit %d\n%s", code, out)
	}
	trial := startBinary(t, b.cfg)
	trialCopy := filepath.Join(t.TempDir(), "alice.mbox")
	writeSpool(t, trialCopy, readText(t, filepath.Join(b.varMail, "alice")))
	out, _, code = popgate(t, "import", "mbox", "--config", b.cfg, "alice", trialCopy)
	if code != 0 || !strings.Contains(out, "3 imported, 0 already there") {
		t.Fatalf("step 3: import mbox: exit %d\n%s", code, out)
	}
	if uids, first := popUIDLs(t, trial.pop, "alice@example.com", b.alicePW, false); !slices.Equal(uids, b.aliceUIDLs) ||
		!strings.Contains(first, "Subject: first") {
		t.Fatalf("step 3: alice's UIDL on the trial server: %q, want qpopper's %q", uids, b.aliceUIDLs)
	}
	if out, ok := poplibLogin(t, trial.pop, "127.0.0.40", "alice@example.com", b.alicePW+"x"); ok {
		t.Errorf("step 3: a wrong password logged in:\n%s", out)
	}
	if err := trial.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := trial.cmd.Wait(); err != nil {
		t.Fatalf("step 3: the trial server did not exit 0 on SIGTERM: %v", err)
	}
	// Meanwhile sendmail delivers once more and alice's client lists it
	// through qpopper, which gives it an X-UIDL.
	f, err := os.OpenFile(filepath.Join(b.varMail, "alice"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(aliceLate); err != nil {
		t.Fatal(err)
	}
	f.Close()
	spoolBefore["alice"] += aliceLate
	b.aliceUIDLs = append(b.aliceUIDLs, aliceLateUIDL)

	// Step 4: cut over: every spool, under mail.local's locks. The trial
	// imported alice's first three messages; only the late one is new.
	out, _, code = popgate(t, "import", "spool", "--config", b.cfg, b.varMail)
	if code != 0 {
		t.Fatalf("step 4: import spool: exit %d\n%s", code, out)
	}
	mustContain(t, "step 4: import spool's report", out,
		"skipped 1 spool file(s) that are not users of example.com: root",
		"spool "+b.varMail+": 2 mailbox(es), 3 imported, 3 already there")
	// Idempotent: run again, nothing is imported twice.
	if out, _, code := popgate(t, "import", "spool", "--config", b.cfg, b.varMail); code != 0 ||
		!strings.Contains(out, "2 mailbox(es), 0 imported, 6 already there") {
		t.Fatalf("step 4: second import spool: exit %d\n%s", code, out)
	}
	for n, text := range spoolBefore {
		if got := readText(t, filepath.Join(b.varMail, n)); got != text {
			t.Errorf("step 4: the import changed /var/mail/%s", n)
		}
	}
	if locks, _ := filepath.Glob(filepath.Join(b.varMail, "*.lock")); len(locks) != 0 {
		t.Errorf("step 4: dot-locks left behind: %v", locks)
	}

	// Step 5: the real listeners, on free loopback ports here. The TLS
	// certificate stands for the one qpopper and sendmail used.
	cert, key := filepath.Join(b.root, "etc", "ssl", "mail.example.com.pem"), filepath.Join(b.root, "etc", "ssl", "private", "mail.example.com.key")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "", need(t, "openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN=mail.example.com", "-addext", "subjectAltName=DNS:mail.example.com,IP:127.0.0.1",
		"-keyout", key, "-out", cert); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	// Bad input first: the walk-through's snippet pasted below the
	// imported file repeats its [relay] table, and puts hostname into the
	// last table ([smtp] here, [queue.routes] as imported); check names
	// the line of each.
	pasted := filepath.Join(b.etcPopgate, "pasted.toml")
	for paste, want := range map[string]*regexp.Regexp{
		"[relay]\npop_ttl = \"15m\"\n":      regexp.MustCompile(`pasted\.toml:\d+: Key 'relay' has already been defined`),
		"hostname = \"mail.example.com\"\n": regexp.MustCompile(`pasted\.toml:\d+: smtp\.hostname: unknown key`),
	} {
		writeFile(t, b.etcPopgate, "pasted.toml", readText(t, b.cfg)+"\n"+paste)
		if out, _, code := popgate(t, "check", "--config", pasted); code != 1 || !want.MatchString(out) {
			t.Errorf("step 5: check on a pasted %q: exit %d, want 1 and %v\n%s", paste, code, want, out)
		}
	}
	os.Remove(pasted)
	accessDB := filepath.Join(b.etcMail, "access.db")
	editTOML(t, b.cfg, []tomlSet{
		{"", "hostname", `"mail.example.com"`},
		{"tls", "cert", fmt.Sprintf("%q", cert)},
		{"tls", "key", fmt.Sprintf("%q", key)},
		{"pop3", "listen", `["127.0.0.1:0"]`},
		{"pop3", "listen_tls", `["127.0.0.1:0"]`},
		{"smtp", "listen", `["127.0.0.1:0"]`},
		{"smtp", "submission", `["127.0.0.1:0"]`},
		{"smtp", "submissions", `["127.0.0.1:0"]`},
		{"smtp", "sender_check", `"owner"`},
		{"relay", "pop_ttl", `"15m"`},
		// Not the office LAN of the walk-through: [] makes loopback a
		// remote client, so 127.0.0.2 and 127.0.0.3 stand for roaming users.
		{"relay", "trusted_networks", `[]`},
	})
	// Step 7's mirror, set up with the listeners: sendmail's access.db kept
	// in step for a sendmail that keeps running beside popgate.
	f, err = os.OpenFile(b.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[[relay.mirror]]\npath = %q\nflavor = \"sendmail\"\nformat = \"hash\"\n", accessDB)
	f.Close()
	// chown -R popgate:popgate is left out: this machine has no popgate
	// user, and the server runs as root here.
	if out, _, code := popgate(t, "check", "--config", b.cfg); code != 0 || !strings.Contains(out, "configuration ok") {
		t.Fatalf("step 5: check: exit %d\n%s\n%s", code, out, readText(t, b.cfg))
	}
	// Bad input: step 1 run again would lose these edits; it refuses.
	edited := readText(t, b.cfg)
	if out, _, code := popgate(t, "import", "sendmail", "--from", b.etcMail, "--out", b.etcPopgate, "--data-dir", b.dataDir); code != 1 ||
		!strings.Contains(out, b.cfg) || !strings.Contains(out, "--force") || readText(t, b.cfg) != edited {
		t.Errorf("step 5: import sendmail over the edited configuration: exit %d\n%s", code, out)
	}
	s := startBinary(t, b.cfg)
	m := regexp.MustCompile(`(?m)^\s+pop3\.listen_tls\s+(\S+)$`).FindStringSubmatch(s.stdout.String())
	if m == nil || s.sub == "" {
		t.Fatalf("step 5: listeners:\n%s", s.stdout)
	}
	pop3s := m[1]

	// Users log in with their original passwords; UIDL lists qpopper's
	// X-UIDLs in spool order, the trial's and the cut-over's together.
	if uids, _ := popUIDLs(t, s.pop, "alice@example.com", b.alicePW, false); !slices.Equal(uids, b.aliceUIDLs) {
		t.Errorf("step 5: alice's UIDL: %q, want %q", uids, b.aliceUIDLs)
	}
	if uids, first := popUIDLs(t, s.pop, "bob@example.com", b.bobPW, false); !slices.Equal(uids, b.bobUIDLs) ||
		!strings.Contains(first, "bob's first") {
		t.Errorf("step 5: bob's UIDL: %q, want %q", uids, b.bobUIDLs)
	}
	// Over POP3S with the certificate from [tls], as a client checks it.
	script := `import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
p = poplib.POP3_SSL(sys.argv[1], int(sys.argv[2]), context=ctx, timeout=20)
p.user(sys.argv[4]); p.pass_(sys.argv[5]); print("stat", p.stat()); p.quit()`
	host, port, _ := net.SplitHostPort(pop3s)
	if out, err := runCmd(t, "", need(t, "python3"), "-c", script, host, port, cert, "bob@example.com", b.bobPW); err != nil ||
		!strings.Contains(out, "stat (2, ") {
		t.Errorf("step 5: POP3S as bob: %v\n%s", err, out)
	}
	// Bad input: carol's account was locked, root's is a system account.
	for i, u := range [][2]string{{"carol@example.com", b.carolPW}, {"root@example.com", "root pw"}, {"bob@example.com", b.alicePW}} {
		if out, ok := poplibLogin(t, s.pop, fmt.Sprintf("127.0.0.%d", 41+i), u[0], u[1]); ok || !strings.Contains(out, "refused") {
			t.Errorf("step 5: %s logged in:\n%s", u[0], out)
		}
	}
	// fetchmail, which had all of alice's mail from qpopper, fetches none.
	home, got := t.TempDir(), t.TempDir()
	idfile := filepath.Join(home, ".fetchids")
	var ids strings.Builder
	popHost, _, _ := net.SplitHostPort(s.pop)
	for _, u := range b.aliceUIDLs {
		fmt.Fprintf(&ids, "alice@example.com@%s %s\n", popHost, u)
	}
	if err := os.WriteFile(idfile, []byte(ids.String()), 0o600); err != nil { // fetchmail insists on 0600
		t.Fatal(err)
	}
	if n := fetchmailKeep(t, s.pop, "alice@example.com", b.alicePW, idfile, got); n != 0 {
		t.Fatalf("step 5: fetchmail fetched %d messages it had from qpopper", n)
	}

	// Step 6: /usr/sbin/sendmail for cron, scripts and PHP.
	for link, target := range map[string]string{b.sendmail: binary(t), filepath.Join(b.root, "usr", "bin", "mailq"): binary(t)} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	mailrc := filepath.Join(b.root, "mailrc")
	writeFile(t, b.root, "mailrc", "set sendmail="+b.sendmail+"\n")
	mailEnv := []string{"POPGATE_CONFIG=" + b.cfg, "MAILRC=" + mailrc, "HOME=" + t.TempDir()}
	mailx := exec.Command(need(t, "mail"), "-s", "hello from cron's sendmail", "root")
	mailx.Env = append(os.Environ(), mailEnv...)
	mailx.Stdin = strings.NewReader("migration test\n")
	if out, err := mailx.CombinedOutput(); err != nil {
		t.Fatalf("step 6: mail -s: %v\n%s", err, out)
	}
	aliceMd := filepath.Join(b.dataDir, "mail", "example.com", "alice")
	// root is alice by /etc/mail/aliases, carried over in step 1.
	var cron []string
	waitUntil(t, "step 6: the cron message in alice's maildir", 30*time.Second, func() bool {
		cron = mailboxWith(t, aliceMd, "Subject: hello from cron's sendmail")
		return len(cron) == 1
	})
	if !strings.HasPrefix(cron[0], "Return-Path: <root@example.com>\nDelivered-To: alice@example.com\n") || !strings.Contains(cron[0], "\n\nmigration test\n") {
		t.Errorf("step 6: the cron message:\n%s", cron[0])
	}
	mq := exec.Command(filepath.Join(b.root, "usr", "bin", "mailq"))
	mq.Env = append(os.Environ(), mailEnv...)
	if out, err := mq.CombinedOutput(); err != nil || !strings.Contains(string(out), "Mail queue is empty") {
		t.Errorf("step 6: mailq: %v\n%s", err, out)
	}
	// fetchmail picks up exactly the new message: nothing twice.
	if n := fetchmailKeep(t, s.pop, "alice@example.com", b.alicePW, idfile, got); n != 1 {
		t.Errorf("step 6: fetchmail fetched %d messages after one delivery, want 1", n)
	}

	// The listeners of step 5 at work. Submission with SMTP AUTH over
	// STARTTLS: alice may send as herself or an alias of hers, not as bob.
	submit := func(from, rcpt string) string {
		out, _ := runCmd(t, "", need(t, "swaks"), "--server", s.sub, "--tls", "--auth", "PLAIN",
			"--auth-user", "alice@example.com", "--auth-password", b.alicePW,
			"--from", from, "--to", rcpt, "--body", "submitted by alice", "--timeout", "20")
		return out
	}
	if out := submit("bob@example.com", "friend@remote.example"); !strings.Contains(out, "* 553 5.7.1 Sender address not owned") {
		t.Errorf("submission: alice sent as bob:\n%s", out)
	}
	if out := submit("alice@example.com", "friend@remote.example"); !strings.Contains(out, "queued as") {
		t.Errorf("submission: alice as herself refused:\n%s", out)
	}
	if out := submit("info@example.net", "bob@example.com"); !strings.Contains(out, "queued as") {
		t.Errorf("submission: alice as info@example.net (virtusertable: hers) refused:\n%s", out)
	}
	// virtusertable addresses over SMTP, from a remote client.
	if out := swaksSend(t, s.mx, "127.0.0.3", "someone@remote.example", "sales@example.net"); !strings.Contains(out, "queued as") {
		t.Errorf("MX: sales@example.net refused:\n%s", out)
	}
	if n := len(mailboxWith(t, filepath.Join(b.dataDir, "mail", "example.com", "bob"), "To: sales@example.net")); n != 1 {
		t.Errorf("MX: bob has %d messages to sales@example.net, want 1", n)
	}
	if out := swaksSend(t, s.mx, "127.0.0.3", "someone@remote.example", "nobody@example.net"); !strings.Contains(out, "550 5.1.1") {
		t.Errorf("MX: virtusertable error:nouser accepted:\n%s", out)
	}
	// POP-before-SMTP: after alice's login from 127.0.0.2 that address
	// relays; 127.0.0.3 does not.
	if got := trySend(t, "127.0.0.3", s.mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Errorf("relay before the POP3 login: %q", got)
	}
	popLogin(t, "127.0.0.2", s.pop, "alice@example.com", b.alicePW)
	if got := trySend(t, "127.0.0.2", s.mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Errorf("relay after the POP3 login from 127.0.0.2: %q", got)
	}
	if got := trySend(t, "127.0.0.3", s.mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "554 5.7.1") {
		t.Errorf("relay from 127.0.0.3 after a login from 127.0.0.2: %q", got)
	}
	// Both relayed messages (submission, POP-before-SMTP) reach the sink.
	waitUntil(t, "the relayed messages at smtp-sink", 60*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(sinkDir, "msg.*"))
		return len(files) == 2
	})

	// Step 7: sendmail's access.db holds the grant beside the static rules.
	waitUntil(t, "the grant in /etc/mail/access.db", 30*time.Second, func() bool {
		out, err := runCmd(t, "", need(t, "db5.3_dump"), "-p", accessDB)
		return err == nil && strings.Contains(out, "connect:127.0.0.2\n RELAY") && strings.Contains(out, "spamford.com\n REJECT")
	})

	// Step 8: who may relay now, and who relies on POP-before-SMTP.
	if out, _, code := popgate(t, "grants", "list", "--config", b.cfg); code != 0 || !regexp.MustCompile(`(?m)^127\.0\.0\.2\s+alice@example\.com\s`).MatchString(out) {
		t.Errorf("step 8: grants list: exit %d\n%s", code, out)
	}
	if out, _, code := popgate(t, "report", "--config", b.cfg); code != 0 || !regexp.MustCompile(`(?m)^\s*alice@example\.com\s+1\s`).MatchString(out) {
		t.Errorf("step 8: report: exit %d\n%s", code, out)
	}
}
