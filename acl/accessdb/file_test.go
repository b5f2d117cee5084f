package accessdb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

func TestWriteFileInPlaceAndMtime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.db")
	base := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	clock := base
	now := func() time.Time { return clock }
	es := []Entry{{Key: []byte("192.168.0"), Value: []byte("RELAY")}}

	if err := WriteFile(path, es, Hash, now); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	// The first write moves the fresh file's mtime (the real "now") to at
	// least its own second + 1 s; with the clock far ahead it is the clock.
	if got := mtime(t, path); !got.Equal(base.Truncate(time.Second)) {
		t.Errorf("first mtime %v, want %v", got, base.Truncate(time.Second))
	}
	ino := inode(t, path)

	// Same second again: mtime must still grow, by exactly one second.
	es = append(es, Entry{Key: []byte("10.1.2.3"), Value: []byte("RELAY")})
	if err := WriteFile(path, es, Hash, now); err != nil {
		t.Fatal(err)
	}
	if got, want := mtime(t, path), base.Truncate(time.Second).Add(time.Second); !got.Equal(want) {
		t.Errorf("second mtime %v, want %v", got, want)
	}
	if err := WriteFile(path, es, Hash, now); err != nil {
		t.Fatal(err)
	}
	if got, want := mtime(t, path), base.Truncate(time.Second).Add(2*time.Second); !got.Equal(want) {
		t.Errorf("third mtime %v, want %v", got, want)
	}
	// A clock well ahead wins, truncated to the second.
	clock = base.Add(time.Minute + 300*time.Millisecond)
	if err := WriteFile(path, es, Hash185, now); err != nil {
		t.Fatal(err)
	}
	if got, want := mtime(t, path), base.Add(time.Minute).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("later mtime %v, want %v", got, want)
	}
	if got := inode(t, path); got != ino {
		t.Errorf("inode changed from %d to %d: the file was replaced, not rewritten", ino, got)
	}
	m, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format() != Hash185 {
		t.Errorf("format %v after rewrite as hash185", m.Format())
	}
	checkMap(t, m, es)
}

func TestWriteFileShrinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.db")
	now := time.Now
	if err := WriteFile(path, genEntries(5000, 0), Hash, now); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, nil, Hash, now); err != nil {
		t.Fatal(err)
	}
	m, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries()) != 0 {
		t.Errorf("%d entries left after writing an empty map", len(m.Entries()))
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.db")
	dup := []Entry{{Key: []byte("a")}, {Key: []byte("a")}}
	if err := WriteFile(path, dup, Hash, time.Now); err == nil {
		t.Error("duplicate keys: no error")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused write created the file (%v)", err)
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.db"), nil, Hash, time.Now); err == nil {
		t.Error("write into a missing directory: no error")
	}
	_, err := ReadFile(filepath.Join(dir, "missing.db"))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("missing.db")) {
		t.Errorf("ReadFile of a missing file: %v, want an error naming it", err)
	}
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, []byte("not a database, not at all, but long enough to have a magic number"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(bad)
	var ce *CorruptError
	if !errors.As(err, &ce) || !bytes.Contains([]byte(err.Error()), []byte("bad.db")) {
		t.Errorf("ReadFile of a corrupt file: %v, want a CorruptError naming it", err)
	}
}

func TestUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.db")
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	put := func(k, v string) func([]Entry) ([]Entry, error) {
		return func(es []Entry) ([]Entry, error) {
			return append(es, Entry{Key: []byte(k), Value: []byte(v)}), nil
		}
	}
	// A failing edit of a missing file leaves no file behind.
	if err := Update(path, Hash, now, func([]Entry) ([]Entry, error) { return nil, errors.New("no") }); err == nil {
		t.Error("failing edit: no error")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failing edit of a missing file left a file (%v)", err)
	}
	// A missing file is an empty map.
	if err := Update(path, Hash, now, put("a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := Update(path, Hash, now, put("b", "2")); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mt := mtime(t, path)
	// A failing edit, an edit producing a duplicate, a corrupt file: untouched.
	boom := errors.New("boom")
	if err := Update(path, Hash, now, func([]Entry) ([]Entry, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("failing edit: err = %v", err)
	}
	if err := Update(path, Hash, now, put("a", "again")); err == nil {
		t.Error("duplicate from edit: no error")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) || !mtime(t, path).Equal(mt) {
		t.Error("a failed Update changed the file")
	}
	m, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, m, []Entry{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}})

	corrupt := bytes.Clone(before)
	corrupt[8192+8] ^= 0xff
	if err := os.WriteFile(path, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	err = Update(path, Hash, now, func(es []Entry) ([]Entry, error) { called = true; return es, nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || called {
		t.Errorf("corrupt file: err = %v, edit called %v", err, called)
	}
	after, _ = os.ReadFile(path)
	if !bytes.Equal(after, corrupt) {
		t.Error("Update rewrote a corrupt file")
	}
}

// TestUpdateConcurrent: read-modify-write under the lock loses no update.
func TestUpdateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.db")
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- Update(path, Hash, time.Now, func(es []Entry) ([]Entry, error) {
				return append(es, Entry{Key: []byte{'k', byte('a' + i)}, Value: []byte("RELAY")}), nil
			})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	m, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Entries()); got != n {
		t.Errorf("%d entries after %d concurrent updates", got, n)
	}
}

// TestWriteFileWaitsForReaders: a reader's shared lock (as sendmail takes
// it) holds the rewrite back until it is released.
func TestWriteFileWaitsForReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.db")
	if err := WriteFile(path, []Entry{{Key: []byte("a"), Value: []byte("1")}}, Hash, time.Now); err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := syscall.Flock(int(reader.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- WriteFile(path, []Entry{{Key: []byte("b"), Value: []byte("2")}}, Hash, time.Now)
	}()
	select {
	case err := <-done:
		t.Fatalf("WriteFile finished while a reader held LOCK_SH (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	before, _ := os.ReadFile(path)
	m, err := Decode(before)
	if err != nil {
		t.Fatalf("the map changed under a reader's lock: %v", err)
	}
	if _, ok := m.Get([]byte("a")); !ok {
		t.Error("the map changed under a reader's lock")
	}
	if err := syscall.Flock(int(reader.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m, err = ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get([]byte("b")); !ok {
		t.Error("the rewrite did not land after the reader let go")
	}
}
