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

// A finished message's files are kept as free files and reused, written
// over and cut to the new length, by the next message.
func TestSpoolFilesAreRecycled(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	h := newHarness(t, s, nil)
	h.run(t)
	long := testMsg + strings.Repeat("a long first body line\r\n", 200)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test", "carol@remote.test", "dave@remote.test"}, long)
	s.wait(t)
	h.waitAttempt(t)
	free := freeFiles(t, h.cfg.Dir)
	if len(free) != 2 {
		t.Fatalf("free files %v, want the finished .env and .msg", free)
	}
	if f := spoolFiles(t, h.cfg.Dir); len(f) != 0 {
		t.Fatalf("spool holds %v after delivery", f)
	}

	// The next message takes both files over.
	h2 := h.q
	id, err := h2.Enqueue(t.Context(), "alice@local.test", []string{"erin@remote.test"}, strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{h.q.msgPath(id), h.q.envPath(id)} {
		if _, ok := free[inode(t, p)]; !ok {
			t.Errorf("%s is a new file, want a recycled one", filepath.Base(p))
		}
	}
	m := s.wait(t)
	if string(m.Body) != testMsg {
		t.Errorf("recycled body delivered as %q, want %q (old tail cut)", m.Body, testMsg)
	}
	if len(m.To) != 1 || m.To[0] != "erin@remote.test" {
		t.Errorf("recipients %v, want only erin (the old envelope's tail is gone)", m.To)
	}
}

// Free files survive a restart as free files: never scheduled, never
// removed, reused afterwards, and new free names do not collide with them.
func TestFreeFilesAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	for _, n := range []string{"free-7", "free-3"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("old body\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.q.Close(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	if n := h.queued(t); n != 0 {
		t.Fatalf("%d messages scheduled from free files", n)
	}
	if got := freeFiles(t, dir); len(got) != 2 {
		t.Fatalf("free files after start %v, want both kept", got)
	}
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	if got := freeFiles(t, dir); len(got) != 0 {
		t.Errorf("free files %v left, want both reused", got)
	}
	b, err := os.ReadFile(h.q.msgPath(id))
	if err != nil || string(b) != testMsg {
		t.Fatalf("body %q, %v", b, err)
	}
	if err := h.q.Delete(id); err != nil {
		t.Fatal(err)
	}
	got := freeFiles(t, dir)
	if len(got) != 2 {
		t.Fatalf("free files after Delete %v, want 2", got)
	}
	names := map[string]bool{}
	for _, n := range got {
		names[n] = true
	}
	if !names["free-8"] || !names["free-9"] {
		t.Errorf("free names %v, want free-8 and free-9 (numbered past those found at start)", got)
	}
}
