package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

// Crash tests re-run this test binary as a child that works on a real
// spool directory and stops at a chosen point; the parent kills it with
// SIGKILL there and reopens the directory.

const helperEnv = "POPGATE_QUEUE_HELPER"

// TestHelperProcess is the child. It is a no-op in a normal test run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for the crash tests")
	}
	ready := func(id string) {
		fmt.Printf("READY %s\n", id)
		select {} // wait for SIGKILL
	}
	cfg := Config{
		Dir:          os.Getenv("QUEUE_DIR"),
		Hostname:     "relay.test",
		Smarthost:    os.Getenv("QUEUE_SINK"),
		SmarthostTLS: TLSNone,
		MinRetry:     time.Second,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Bouncer:      &bouncer{ch: make(chan bounceRec, 10)},
	}
	q, err := New(cfg)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	switch mode {
	case "after-msg":
		q.hookAfterMsg = ready
	case "after-delivery":
		q.hookAfterDelivery = ready
		go func() { _ = q.Run(context.Background()) }()
	}
	id, err := q.Enqueue(context.Background(), "alice@local.test", []string{"bob@remote.test"}, strings.NewReader(testMsg))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	if mode == "after-enqueue" {
		ready(id)
	}
	select {}
}

// crashChild runs the helper in mode and kills it when it reports READY;
// it returns the id it printed.
func crashChild(t *testing.T, mode, dir, sinkAddr string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "QUEUE_DIR="+dir, "QUEUE_SINK="+sinkAddr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "READY ") || strings.HasPrefix(l, "ERR ") {
				lines <- l
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("helper never reached its crash point")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if strings.HasPrefix(line, "ERR ") {
		t.Fatalf("helper: %s", line)
	}
	return strings.TrimPrefix(line, "READY ")
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != lockFile && !isFreeName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestCrashAfterBodyBeforeEnvelopeRemovesOrphan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id := crashChild(t, "after-msg", dir, "127.0.0.1:1")
	if _, err := os.Stat(filepath.Join(dir, id+msgSuffix)); err != nil {
		t.Fatalf("the child should have left its body: %v", err)
	}
	h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	if n := h.queued(t); n != 0 {
		t.Errorf("%d messages queued from an unacknowledged enqueue", n)
	}
	if f := spoolFiles(t, dir); len(f) != 0 {
		t.Errorf("orphans left: %v", f)
	}
	if !strings.Contains(h.logs.String(), "queue orphan removed") {
		t.Error("orphan removal not logged")
	}
}

// The same crash in a recycled file: the new body is written over a
// delivered message's whole .msg, whose envelope and trailer are still at
// the end. That stale envelope names the old id and must not make the
// torn file a queued message.
func TestCrashInRecycledFileRemovesOrphan(t *testing.T) {
	t.Parallel()
	old := newHarness(t, nil, nil)
	oldID := old.enqueue(t, "old@local.test", []string{"old@remote.test"},
		testMsg+strings.Repeat("an old body line\r\n", 300))
	stale, err := os.ReadFile(old.q.msgPath(oldID))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "free-1"), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	id := crashChild(t, "after-msg", dir, "127.0.0.1:1")
	got, err := os.ReadFile(filepath.Join(dir, id+msgSuffix))
	if err != nil {
		t.Fatalf("the child should have left its body: %v", err)
	}
	if len(got) != len(stale) || !strings.HasPrefix(string(got), testMsg) {
		t.Fatalf("the child did not write over the free file (%d bytes, want %d)", len(got), len(stale))
	}
	h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	if n := h.queued(t); n != 0 {
		t.Errorf("%d messages queued from a torn recycled file", n)
	}
	if f := spoolFiles(t, dir); len(f) != 0 {
		t.Errorf("orphans left: %v", f)
	}
	if _, err := os.Stat(filepath.Join(dir, quarantineDir)); err == nil {
		t.Error("an unacknowledged file was quarantined")
	}
}

// A message deferred once has a .env as well; once delivered, both files
// are recycled, and the next messages' .msg files reuse them.
func TestEnvelopeFilesAreRecycled(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	var fail atomic.Bool
	fail.Store(true)
	s.SetRcpt(func(string) error {
		if fail.Load() {
			return errors.New("try later")
		}
		return nil
	})
	h := newHarness(t, s, nil)
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	if _, err := os.Stat(h.q.envPath(id)); err != nil {
		t.Fatalf("no .env after a deferred attempt: %v", err)
	}
	fail.Store(false)
	if err := h.q.Flush(id); err != nil {
		t.Fatal(err)
	}
	s.Wait(t)
	h.waitAttempt(t)
	free := freeFiles(t, h.cfg.Dir)
	if len(free) != 2 {
		t.Fatalf("free files %v, want the delivered .env and .msg", free)
	}
	if f := spoolFiles(t, h.cfg.Dir); len(f) != 0 {
		t.Fatalf("spool holds %v after delivery", f)
	}
	// Deferred again, so nothing is recycled meanwhile: the two new
	// messages take both free files.
	fail.Store(true)
	used := map[uint64]bool{}
	for _, rcpt := range []string{"carol@remote.test", "dave@remote.test"} {
		nid := h.enqueue(t, "alice@local.test", []string{rcpt}, testMsg)
		used[inode(t, h.q.msgPath(nid))] = true
		h.waitAttempt(t)
	}
	for ino, name := range free {
		if !used[ino] {
			t.Errorf("free file %s (inode %d) not reused", name, ino)
		}
	}
	fail.Store(false)
	if err := h.q.Flush(""); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		m := s.Wait(t)
		if string(m.Body) != testMsg || len(m.To) != 1 {
			t.Errorf("recycled file delivered %v %q, want one recipient and %q", m.To, m.Body, testMsg)
		}
		got[strings.Join(m.To, ",")] = true
	}
	if !got["carol@remote.test"] || !got["dave@remote.test"] {
		t.Errorf("delivered to %v, want carol and dave", got)
	}
}

func TestCrashAfterEnqueueKeepsMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id := crashChild(t, "after-enqueue", dir, "127.0.0.1:1")
	s := smtptest.NewSink(t)
	// The child used the real clock.
	h := newHarness(t, s, func(c *Config) { c.Dir, c.Now = dir, time.Now })
	if it := h.item(t, id); it.From != "alice@local.test" || it.Recipients[0].State != StatePending {
		t.Fatalf("restored item %+v", it)
	}
	h.run(t)
	if m := s.Wait(t); string(m.Body) != testMsg {
		t.Errorf("body after restart %q", m.Body)
	}
	h.waitAttempt(t)
	if f := spoolFiles(t, dir); len(f) != 0 {
		t.Errorf("spool not empty: %v", f)
	}
}

func TestCrashAfterDeliveryBeforeUpdateSendsAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := smtptest.NewSink(t)
	id := crashChild(t, "after-delivery", dir, s.Addr)
	if s.Count() != 1 {
		t.Fatalf("sink has %d messages before the crash, want 1", s.Count())
	}
	s.Wait(t)
	h := newHarness(t, s, func(c *Config) { c.Dir, c.Now = dir, time.Now })
	if it := h.item(t, id); it.Recipients[0].State != StatePending {
		t.Fatalf("after the crash %+v, want still pending", it.Recipients[0])
	}
	h.run(t)
	m := s.Wait(t) // at-least-once: the unrecorded delivery is repeated
	if string(m.Body) != testMsg {
		t.Errorf("body %q", m.Body)
	}
	h.waitAttempt(t)
	if s.Count() != 2 {
		t.Errorf("sink has %d messages, want exactly 2 (one duplicate)", s.Count())
	}
	if f := spoolFiles(t, dir); len(f) != 0 {
		t.Errorf("spool not empty: %v", f)
	}
}

func TestStartupQuarantinesCorruptEnvelopes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	keep := good.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	if err := good.q.Close(); err != nil {
		t.Fatal(err)
	}
	bad := "00000000000000000000dead"
	for name, content := range map[string]string{
		bad + envSuffix:                        `{"version":1,"id":"` + bad + `","rcpts":[`,
		bad + msgSuffix:                        testMsg,
		"00000000000000000000beef" + envSuffix: `{"version":1,"id":"00000000000000000000beef","from":"a@b","rcpts":[{"addr":"c@d","state":"pending"}],"created":"2026-01-01T00:00:00Z","size":1,"attempts":0,"next_try":"2026-01-01T00:00:00Z"}`,
		"not-an-id" + envSuffix:                "{}",
		".x.env.tmp.1.2.3":                     "partial",
		// A .env is only ever replaced whole (temporary name, rename):
		// an empty one is corruption, kept for a human with its body.
		"000000000000000000000e00" + envSuffix: "",
		"000000000000000000000e00" + msgSuffix: testMsg,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	items, err := h.q.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != keep {
		t.Fatalf("List = %+v, want only the good message", items)
	}
	q := spoolFiles(t, filepath.Join(dir, quarantineDir))
	want := map[string]bool{bad + envSuffix: true, bad + msgSuffix: true,
		"00000000000000000000beef" + envSuffix: true, "not-an-id" + envSuffix: true,
		"000000000000000000000e00" + envSuffix: true, "000000000000000000000e00" + msgSuffix: true}
	for _, n := range q {
		delete(want, n)
	}
	if len(want) != 0 {
		t.Errorf("not quarantined: %v (quarantine holds %v)", want, q)
	}
	if _, err := os.Stat(filepath.Join(dir, ".x.env.tmp.1.2.3")); err == nil {
		t.Error("temporary file of an interrupted write was kept")
	}
	if !strings.Contains(h.logs.String(), "queue envelope quarantined") {
		t.Error("quarantine not logged")
	}
}

func TestSecondQueueOnSameDirectoryIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	if _, err := New(h.cfg); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second New = %v, want an in-use error", err)
	}
	if err := h.q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, err := New(h.cfg)
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	q2.Close()
}

func TestCorruptEnvelopeWhileRunningIsQuarantined(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error { return fmt.Errorf("no") })
	h := newHarness(t, s, nil)
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	if err := os.WriteFile(h.q.envPath(id), []byte("\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Flush(id); err != nil {
		t.Fatal(err)
	}
	h.waitAttempt(t)
	if n := h.queued(t); n != 0 {
		t.Errorf("%d queued", n)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, quarantineDir, id+envSuffix)); err != nil {
		t.Errorf("corrupt envelope not quarantined: %v", err)
	}
}
