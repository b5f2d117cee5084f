package smtp

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// fakeStorage is a Storage whose free space the test sets.
type fakeStorage struct {
	free    atomic.Int64
	reserve int64
	asked   atomic.Int64 // the last size asked about
	err     error        // returned instead, when set
}

func (f *fakeStorage) CheckRoom(size int64) error {
	f.asked.Store(size)
	if f.err != nil {
		return f.err
	}
	if free := f.free.Load(); free < f.reserve+size {
		return fmt.Errorf("%d octets free: %w", free, ErrInsufficientStorage)
	}
	return nil
}

// TestFullDiskAtMail: below the reserve MAIL FROM gets 452 4.3.1 (never a
// 5xx), the session stays usable, and as soon as space returns the next
// MAIL is accepted: nothing sticks.
func TestFullDiskAtMail(t *testing.T) {
	t.Parallel()
	st := &fakeStorage{reserve: 1000}
	st.free.Store(5000)
	e := startServer(t, func(e *env) { e.storage = st })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org> SIZE=3000", Want: "250"},
		{Send: "RSET", Want: "250"},
		{Send: "MAIL FROM:<x@example.org> SIZE=4500", Want: "452 4.3.1"},
	})
	if got := st.asked.Load(); got != 4500 {
		t.Errorf("Storage asked for %d octets, want the SIZE parameter 4500", got)
	}
	st.free.Store(500)
	rc.Run([]step{
		{Send: "MAIL FROM:<x@example.org>", Want: "452 4.3.1 Insufficient system storage"},
		{Send: "MAIL FROM:<>", Want: "452 4.3.1"},
		{Send: "NOOP", Want: "250"},
	})
	e.waitLog(t, "smtp insufficient storage")
	st.free.Store(1 << 30)
	rc.Run([]step{
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".", Want: "250 2.0.0"},
	})
}

// TestStorageCheckFailureDoesNotRefuse: a Storage that cannot tell (statfs
// failed) is logged; mail is not refused for it.
func TestStorageCheckFailureDoesNotRefuse(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) { e.storage = &fakeStorage{err: errors.New("statfs: permission denied")} })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}, {Send: "MAIL FROM:<x@example.org>", Want: "250"}})
	e.waitLog(t, "smtp storage check failed")
}

// TestFullDiskAtData: a write that fails for lack of space while the
// message is stored gets 452 4.3.1 after DATA, for local delivery and for
// the relay queue alike, ENOSPC and EDQUOT alike; the next transaction on
// the same session succeeds once the disk has room.
func TestFullDiskAtData(t *testing.T) {
	t.Parallel()
	enospc := &fs.PathError{Op: "write", Path: "/var/lib/popgate/mail/x", Err: syscall.ENOSPC}
	edquot := &fs.PathError{Op: "write", Path: "/var/lib/popgate/queue/x", Err: syscall.EDQUOT}
	cases := []struct {
		name  string
		rcpt  string
		spoil func(e *env)
		fix   func(e *env)
	}{
		{"maildir ENOSPC", "alice@example.com",
			func(e *env) { e.deliverer.err = fmt.Errorf("maildir: deliver: %w", enospc) },
			func(e *env) { e.deliverer.err = nil }},
		{"maildir EDQUOT", "alice@example.com",
			func(e *env) { e.deliverer.err = fmt.Errorf("maildir: deliver: %w", edquot) },
			func(e *env) { e.deliverer.err = nil }},
		{"queue ENOSPC", "x@remote.example",
			func(e *env) { e.spooler.err = fmt.Errorf("queue: write: %w", enospc) },
			func(e *env) { e.spooler.err = nil }},
		{"queue sentinel", "x@remote.example",
			func(e *env) { e.spooler.err = fmt.Errorf("queue: %w", ErrInsufficientStorage) },
			func(e *env) { e.spooler.err = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startServer(t, func(e *env) { e.policy.relayIPs[netip.MustParseAddr("127.0.0.2")] = true })
			tc.spoil(e)
			rc, _ := e.raw(t, "127.0.0.2", e.mx)
			send := []step{
				{Send: "MAIL FROM:<x@example.org>", Want: "250"},
				{Send: "RCPT TO:<" + tc.rcpt + ">", Want: "250"},
				{Send: "DATA", Want: "354"},
			}
			rc.Run(append([]step{{Send: "EHLO c", Want: "250 "}}, send...))
			got := rc.Cmd(simpleMsg + ".")
			if got != "452 4.3.1 Insufficient system storage, try again later\r\n" {
				t.Fatalf("end of DATA on a full disk: %q", got)
			}
			if strings.Contains(e.logs.String(), "smtp internal error") {
				t.Error("a full disk was logged as an internal error")
			}
			tc.fix(e)
			rc.Run(append(send, step{Send: simpleMsg + ".", Want: "250 2.0.0"}))
		})
	}
}

// TestMailLoopRefused: a Deliverer reporting a loop gets 554 5.4.6, and
// the session goes on.
func TestMailLoopRefused(t *testing.T) {
	t.Parallel()
	e := startServer(t, func(e *env) {
		e.deliverer.err = fmt.Errorf("maildir: deliver to alice@example.com: %w", ErrMailLoop)
	})
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	rc.Run([]step{
		{Send: "EHLO c", Want: "250 "},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
		{Send: simpleMsg + ".", Want: "554 5.4.6"},
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
	})
	e.waitLog(t, "smtp mail loop")
}

// TestDelivererGetsEnvelopeSender: the envelope sender reaches final
// delivery (for Return-Path), the null sender as "".
func TestDelivererGetsEnvelopeSender(t *testing.T) {
	t.Parallel()
	e := startServer(t, nil)
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	for _, from := range []string{"<X@Example.ORG>", "<>"} {
		rc.Run([]step{
			{Send: "EHLO c", Want: "250 "},
			{Send: "MAIL FROM:" + from, Want: "250"},
			{Send: "RCPT TO:<alice@example.com>", Want: "250"},
			{Send: "DATA", Want: "354"},
			{Send: simpleMsg + ".", Want: "250"},
		})
	}
	e.deliverer.mu.Lock()
	defer e.deliverer.mu.Unlock()
	if got := strings.Join(e.deliverer.from, "|"); got != "X@example.org|" {
		t.Errorf("senders given to the Deliverer: %q, want %q", got, "X@example.org|")
	}
}

// TestFullDiskSpillBuffer: a message too large for memory is buffered in
// TempDir; with that filesystem full (a real tmpfs) the client gets 452
// 4.3.1 after its data, nothing is delivered, and the session goes on.
func TestFullDiskSpillBuffer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; TestFullDiskAtData covers the reply")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	for err == nil {
		_, err = filler.Write(make([]byte, 4096))
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	e := startServer(t, func(e *env) { e.cfg.TempDir, e.cfg.MemoryBufferBytes = dir, 4096 })
	rc, _ := e.raw(t, "127.0.0.2", e.mx)
	send := []step{
		{Send: "MAIL FROM:<x@example.org>", Want: "250"},
		{Send: "RCPT TO:<alice@example.com>", Want: "250"},
		{Send: "DATA", Want: "354"},
	}
	rc.Run(append([]step{{Send: "EHLO c", Want: "250 "}}, send...))
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 70)+"\r\n", 300)
	if got := rc.Cmd(big + "."); got != "452 4.3.1 Insufficient system storage, try again later\r\n" {
		t.Fatalf("spill to a full disk: %q", got)
	}
	if msgs := e.deliverer.messages(t, "alice@example.com"); len(msgs) != 0 {
		t.Fatalf("delivered %d messages", len(msgs))
	}
	rc.Run(append(send, step{Send: "Subject: small\r\n\r\nfits in memory\r\n.", Want: "250 2.0.0"}))
	filler.Close()
	if err := os.Remove(filler.Name()); err != nil {
		t.Fatal(err)
	}
	rc.Run(append(send, step{Send: big + ".", Want: "250 2.0.0"}))
}
