package main

// Final delivery, full disks and the sender check, through the assembled
// server's real listeners.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/popgate/popgate/smtp/smtptest"
)

// smtpSession opens an SMTP session from 127.0.0.5 to addr, greeted and
// EHLO'd; user, if not empty, authenticates with password pass.
func smtpSession(t *testing.T, addr, user, pass string) *smtptest.Client {
	t.Helper()
	c := smtptest.DialFrom(t, "127.0.0.5", addr)
	c.Hello("client.example.net")
	if user != "" {
		c.AuthPlain(user, pass)
	}
	return c
}

// popRetr logs in as user and returns STAT's reply and message n.
func popRetr(t *testing.T, addr, user, pass string, n int) (stat, msg string) {
	t.Helper()
	c := pop3test.DialFrom(t, "127.0.0.5", addr)
	c.Login(user, pass)
	stat = c.Expect("STAT", "+OK")
	msg = c.Retr(n)
	c.Expect("QUIT", "+OK")
	return stat, msg
}

// TestDeliveredToLoopRefused: a message that already carries Delivered-To
// for its mailbox is refused with 554 5.4.6 and stored nowhere; the same
// session then delivers a clean one, which gets Return-Path (the message's
// own one replaced) and Delivered-To.
func TestDeliveredToLoopRefused(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir), &fakeClock{})
	c := smtpSession(t, s.addr("smtp.listen"), "", "")
	loop := "Delivered-To: Bob@Example.com\r\nSubject: loop\r\n\r\nagain\r\n"
	if got := c.Transact("list@remote.example", "bob@example.com", loop); !strings.HasPrefix(got, "554 5.4.6") {
		t.Fatalf("looping message: %q, want 554 5.4.6", got)
	}
	clean := "Return-Path: <forged@evil.example>\r\nDelivered-To: list@remote.example\r\nSubject: ok\r\n\r\nfine\r\n"
	if got := c.Transact("list@remote.example", "bob@example.com", clean); !strings.HasPrefix(got, "250") {
		t.Fatalf("clean message: %q", got)
	}
	stat, msg := popRetr(t, s.addr("pop3.listen"), "bob@example.com", "bob-password", 1)
	if !strings.HasPrefix(stat, "+OK 1 ") {
		t.Errorf("STAT %q: the looping message must not be stored", stat)
	}
	if !strings.HasPrefix(msg, "Return-Path: <list@remote.example>\r\nDelivered-To: bob@example.com\r\nReceived: ") ||
		strings.Contains(msg, "forged@evil.example") || !strings.Contains(msg, "Delivered-To: list@remote.example\r\n") {
		t.Errorf("stored message:\n%s", msg)
	}
}

// TestSenderCheckConfigured: smtp.sender_check = "local-domains" lets
// alice send as bob, not as a stranger.
func TestSenderCheckConfigured(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SMTP.SenderCheck = "local-domains"
	s := startServer(t, cfg, &fakeClock{})
	c := smtpSession(t, s.addr("smtp.submission"), "alice@example.com", "alice's secret")
	c.Expect("MAIL FROM:<ceo@remote.example>", "553 5.7.1")
	c.Expect("MAIL FROM:<bob@example.com>", "250")
	c.Expect("RCPT TO:<friend@remote.example>", "250")
}

// mountTmpfs mounts a tmpfs of size on a new temporary directory. It
// needs root (CI runs as root); TestDeliverMailFullDisk in maildir and the
// smtp full-disk tests cover the logic everywhere else.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes path until its filesystem is full and returns the file.
func fillDisk(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return f
		}
	}
}

// leaveFree shrinks the filler so that about n octets are free.
func leaveFree(t *testing.T, f *os.File, n int64) {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(st.Size() - n); err != nil {
		t.Fatal(err)
	}
}

// maildirFiles counts the files in new/, cur/ and tmp/ of a maildir.
func maildirFiles(t *testing.T, dir string) int {
	t.Helper()
	return countFiles(t, filepath.Join(dir, "new")) + countFiles(t, filepath.Join(dir, "cur")) + countFiles(t, filepath.Join(dir, "tmp"))
}

// listFiles names the regular files under dir, for failure messages.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			names = append(names, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	})
	return names
}

// countFiles counts regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	return len(listFiles(t, dir))
}

// countQueued counts the messages in a queue directory: their .msg files.
// The lock, recycled free-N files and the .env an attempt writes beside a
// message come and go with delivery attempts running in the background.
func countQueued(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, name := range listFiles(t, dir) {
		if strings.HasSuffix(name, ".msg") {
			n++
		}
	}
	return n
}

// TestFullDiskTmpfs runs the whole server with data_dir on a real 4 MiB
// tmpfs: with the disk full MAIL FROM gets 452 4.3.1; with less room than
// a message, the end of DATA gets 452 4.3.1 for local and relayed mail and
// leaves no file behind; POP3 keeps serving throughout; queued mail is
// kept; once space returns, mail is accepted again without a restart.
func TestFullDiskTmpfs(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	cfg := testConfig(t, dir)
	cfg.SMTP.MaxMessageBytes = 1 << 20
	cfg.SMTP.MinFreeBytes = 128 << 10
	s := startServer(t, cfg, &fakeClock{})
	mx, sub, pop := s.addr("smtp.listen"), s.addr("smtp.submission"), s.addr("pop3.listen")
	small := "Subject: small\r\n\r\nhello\r\n"
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 8000) // 640 KB

	// The good case, local and relayed (the smarthost refuses: it stays queued).
	if got := smtpSession(t, mx, "", "").Transact("x@remote.example", "bob@example.com", small); !strings.HasPrefix(got, "250") {
		t.Fatalf("local delivery with room: %q", got)
	}
	if got := smtpSession(t, sub, "alice@example.com", "alice's secret").Transact("alice@example.com", "friend@remote.example", small); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay with room: %q", got)
	}
	queueDir, bobDir := filepath.Join(dir, "queue"), filepath.Join(dir, "mail", "example.com", "bob")
	queued, stored := countQueued(t, queueDir), maildirFiles(t, bobDir)
	if queued == 0 || stored != 1 {
		t.Fatalf("before the disk fills: %d files queued, %d stored for bob", queued, stored)
	}

	filler := fillDisk(t, filepath.Join(dir, "filler"))
	c := smtpSession(t, mx, "", "")
	c.Expect("MAIL FROM:<x@remote.example>", "452 4.3.1")
	c.Expect("MAIL FROM:<>", "452 4.3.1")
	a := smtpSession(t, sub, "alice@example.com", "alice's secret")
	a.Expect("MAIL FROM:<alice@example.com>", "452 4.3.1")
	if stat, msg := popRetr(t, pop, "bob@example.com", "bob-password", 1); !strings.HasPrefix(stat, "+OK 1 ") || !strings.Contains(msg, "hello") {
		t.Fatalf("POP3 on a full disk: %q %q", stat, msg)
	}

	// Room for the reserve, not for the message: refused after DATA.
	leaveFree(t, filler, 320<<10)
	c.Expect(fmt.Sprintf("MAIL FROM:<x@remote.example> SIZE=%d", len(big)), "452 4.3.1")
	if got := c.Transact("x@remote.example", "bob@example.com", big); !strings.HasPrefix(got, "452 4.3.1") {
		t.Fatalf("local delivery that does not fit: %q, want 452 4.3.1", got)
	}
	if got := a.Transact("alice@example.com", "friend@remote.example", big); !strings.HasPrefix(got, "452 4.3.1") {
		t.Fatalf("relay that does not fit: %q, want 452 4.3.1", got)
	}
	if n := maildirFiles(t, bobDir); n != stored {
		t.Errorf("bob's maildir holds %d files after the refusal, want %d (no partial file)", n, stored)
	}
	if n := countQueued(t, queueDir); n != queued {
		t.Errorf("the queue holds %d files after the refusal, want %d: %v", n, queued, listFiles(t, queueDir))
	}

	// Space returns: accepted again, on the same sessions.
	filler.Close()
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	if got := c.Transact("x@remote.example", "bob@example.com", big); !strings.HasPrefix(got, "250") {
		t.Fatalf("local delivery after space returned: %q", got)
	}
	if got := a.Transact("alice@example.com", "friend@remote.example", small); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay after space returned: %q", got)
	}
	stat, msg := popRetr(t, pop, "bob@example.com", "bob-password", 2)
	if !strings.HasPrefix(stat, "+OK 2 ") || !strings.HasSuffix(msg, strings.Repeat("x", 78)+"\r\n") {
		t.Fatalf("after recovery: STAT %q, message of %d octets", stat, len(msg))
	}
	items, err := s.queue.List()
	if err != nil || len(items) != 2 {
		t.Fatalf("queue: %d items, %v; want the first relayed message kept and the new one", len(items), err)
	}
}
