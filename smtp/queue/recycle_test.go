package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/popgate/popgate/smtp/smtptest"
	"github.com/spf13/afero"
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

// A delivered message's files are kept as free files and reused, written
// over and cut to the new length, by the next message.
func TestFilesAreRecycled(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, nil)
	h.run(t)
	long := testMsg + strings.Repeat("a long first body line\r\n", 200)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test", "carol@remote.test", "dave@remote.test"}, long)
	s.Wait(t)
	h.waitAttempt(t)
	free := freeFiles(t, h.cfg.Dir)
	if len(free) != 1 {
		t.Fatalf("free files %v, want the delivered .msg (delivered at once: no .env)", free)
	}
	if f := spoolFiles(t, h.cfg.Dir); len(f) != 0 {
		t.Fatalf("spool holds %v after delivery", f)
	}

	id := h.enqueue(t, "alice@local.test", []string{"erin@remote.test"}, testMsg)
	if _, ok := free[inode(t, h.q.msgPath(id))]; !ok {
		t.Errorf("%s is a new file, want a recycled one", filepath.Base(h.q.msgPath(id)))
	}
	m := s.Wait(t)
	if string(m.Body) != testMsg {
		t.Errorf("recycled body delivered as %q, want %q (old tail cut)", m.Body, testMsg)
	}
	if len(m.To) != 1 || m.To[0] != "erin@remote.test" {
		t.Errorf("recipients %v, want only erin (the old envelope's tail is gone)", m.To)
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
	s := smtptest.NewSink(t)
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
		if m := s.Wait(t); string(m.Body) != testMsg {
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

// recyclingFs plays the race List can lose: between List taking an id and
// reading its envelope, the message finished and its file (.env, or the
// .msg holding the initial envelope) was recycled (renamed away, written
// over by another message).
type recyclingFs struct {
	afero.Fs
	victim  atomic.Value // the path whose reads see another message
	content []byte       // what they see
	gone    atomic.Bool  // whether that name has gone by the time of Stat
}

func (r *recyclingFs) Open(name string) (afero.File, error) {
	if v, _ := r.victim.Load().(string); v == name {
		mem := afero.NewMemMapFs()
		_ = afero.WriteFile(mem, "/x", r.content, 0o600)
		return mem.Open("/x")
	}
	return r.Fs.Open(name)
}

func (r *recyclingFs) Stat(name string) (os.FileInfo, error) {
	if v, _ := r.victim.Load().(string); v == name && r.gone.Load() {
		return nil, os.ErrNotExist
	}
	return r.Fs.Stat(name)
}

func TestListSkipsRecycledEnvelope(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{envSuffix, msgSuffix} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			rfs := &recyclingFs{Fs: afero.NewOsFs()}
			h := newHarness(t, nil, func(c *Config) { c.Fs = rfs })
			keep := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
			raced := h.enqueue(t, "alice@local.test", []string{"carol@remote.test"}, testMsg)
			if tc == envSuffix {
				// A message after an attempt: its .env overrides the .msg.
				e, err := h.q.readEnv(raced)
				if err != nil {
					t.Fatal(err)
				}
				e.Attempts = 1
				if err := h.q.writeEnv(e); err != nil {
					t.Fatal(err)
				}
				rfs.content = []byte(`{"version":1,"id":"someone else"}`)
				rfs.victim.Store(h.q.envPath(raced))
			} else {
				// The .msg now holds another message, whole and valid.
				b, err := os.ReadFile(h.q.msgPath(keep))
				if err != nil {
					t.Fatal(err)
				}
				rfs.content = b
				rfs.victim.Store(h.q.msgPath(raced))
			}

			rfs.gone.Store(true)
			items, err := h.q.List()
			if err != nil {
				t.Fatalf("List failed on a recycled file: %v", err)
			}
			if len(items) != 1 || items[0].ID != keep {
				t.Errorf("List = %+v, want only %s", items, keep)
			}

			// The same bad content under a name that is still there is
			// real corruption, and List says so.
			rfs.gone.Store(false)
			if _, err := h.q.List(); err == nil || !errors.Is(err, errCorrupt) {
				t.Errorf("List over a corrupt envelope: err = %v, want errCorrupt", err)
			}
		})
	}
}
