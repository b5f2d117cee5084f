package queue

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func freeFiles(t *testing.T, dir string) map[uint64]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	for _, e := range ents {
		if isFreeName(e.Name()) {
			out[inode(t, filepath.Join(dir, e.Name()))] = e.Name()
		}
	}
	return out
}

// A delivered message's body is kept as a free file and reused, written
// over and cut to the new length, by the next message.
func TestBodiesAreRecycled(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	h := newHarness(t, s, nil)
	h.run(t)
	long := testMsg + strings.Repeat("a long first body line\r\n", 200)
	first := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, long)
	firstIno := inode(t, h.q.msgPath(first))
	s.wait(t)
	h.waitAttempt(t)
	free := freeFiles(t, h.cfg.Dir)
	if len(free) != 1 || free[firstIno] == "" {
		t.Fatalf("free files %v, want the delivered body (inode %d)", free, firstIno)
	}
	if f := spoolFiles(t, h.cfg.Dir); len(f) != 0 {
		t.Fatalf("spool holds %v after delivery", f)
	}

	id := h.enqueue(t, "alice@local.test", []string{"erin@remote.test"}, testMsg)
	if got := inode(t, h.q.msgPath(id)); got != firstIno {
		t.Errorf("new body is inode %d, want the recycled %d", got, firstIno)
	}
	m := s.wait(t)
	if string(m.Body) != testMsg {
		t.Errorf("recycled body delivered as %q, want %q (old tail cut)", m.Body, testMsg)
	}
}

// Delete never recycles: a delivery may still be reading the body, and
// must not see the next message's content in it.
func TestDeleteDoesNotRecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	if err := h.q.Delete(id); err != nil {
		t.Fatal(err)
	}
	if got := freeFiles(t, h.cfg.Dir); len(got) != 0 {
		t.Errorf("free files %v after Delete, want none", got)
	}
}

// Free files survive a restart as free files: never scheduled, never
// removed, reused afterwards, and new free names do not collide with them.
func TestFreeFilesAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newSink(t)
	first := newHarness(t, s, func(c *Config) { c.Dir = dir })
	for _, n := range []string{"free-7", "free-3"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(strings.Repeat("old body\r\n", 100)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.q.Close(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, s, func(c *Config) { c.Dir = dir })
	if n := h.queued(t); n != 0 {
		t.Fatalf("%d messages scheduled from free files", n)
	}
	if got := freeFiles(t, dir); len(got) != 2 {
		t.Fatalf("free files after start %v, want both kept", got)
	}
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.enqueue(t, "alice@local.test", []string{"carol@remote.test"}, testMsg)
	if got := freeFiles(t, dir); len(got) != 0 {
		t.Errorf("free files %v left, want both reused", got)
	}
	h.run(t)
	for range 2 {
		if m := s.wait(t); string(m.Body) != testMsg {
			t.Errorf("delivered %q, want %q", m.Body, testMsg)
		}
		h.waitAttempt(t)
	}
	names := map[string]bool{}
	for _, n := range freeFiles(t, dir) {
		names[n] = true
	}
	if len(names) != 2 || !names["free-8"] || !names["free-9"] {
		t.Errorf("free names %v, want free-8 and free-9 (numbered past those found at start)", names)
	}
}
