package mapfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
)

func testEntries(n int) []accessdb.Entry {
	es := make([]accessdb.Entry, n)
	for i := range es {
		es[i] = accessdb.Entry{Key: fmt.Appendf(nil, "connect:192.0.2.%d", i), Value: []byte("RELAY")}
	}
	return es
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{Hash, Hash185, CDB, LMDB} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
	for _, bad := range []string{"", "btree", "CDB", "dbm"} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q) accepted", bad)
		}
	}
}

// TestWriteReadEveryFormat writes each format through WriteFile and reads
// it back with the format detected from the file.
func TestWriteReadEveryFormat(t *testing.T) {
	es := testEntries(300)
	for _, f := range []Format{Hash, Hash185, CDB, LMDB} {
		t.Run(f.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access"+f.Extension())
			if err := WriteFile(path, PostmapForm(f, es), f, time.Now); err != nil {
				t.Fatal(err)
			}
			m, err := ReadFile(path, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			if m.Format() != f {
				t.Errorf("detected %v, want %v", m.Format(), f)
			}
			if len(m.Entries()) != len(es) {
				t.Errorf("%d entries, want %d", len(m.Entries()), len(es))
			}
			for _, e := range PostmapForm(f, es) {
				if v, ok := m.Get(e.Key); !ok || !bytes.Equal(v, e.Value) {
					t.Fatalf("Get(%q) = %q, %v", e.Key, v, ok)
				}
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, f := range []Format{Hash, Hash185, LMDB} {
		data, err := Encode(testEntries(3), f)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Detect("map.db", data); err != nil || got != f {
			t.Errorf("Detect(%v data) = %v, %v", f, got, err)
		}
	}
	data, err := Encode(testEntries(3), CDB)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Detect("/etc/postfix/popgate.cdb", data); err != nil || got != CDB {
		t.Errorf("Detect(cdb) = %v, %v", got, err)
	}
	if _, err := Detect("/etc/postfix/popgate", data); err == nil {
		t.Error("cdb data under a name without .cdb was accepted")
	}
	if _, err := Detect("x.db", []byte("garbage")); err == nil {
		t.Error("garbage accepted")
	}
}

// TestReplaceAtomically checks the cdb/LMDB write: a new inode each time
// (a reader holding the old one keeps a whole map), mtime strictly
// growing in whole seconds even when the clock stands still, the mode
// kept, and no temporary file left behind.
func TestReplaceAtomically(t *testing.T) {
	for _, f := range []Format{CDB, LMDB} {
		t.Run(f.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "popgate"+f.Extension())
			clock := fixedClock(time.Date(2026, 3, 1, 12, 0, 0, 700e6, time.UTC))
			if err := WriteFile(path, testEntries(5), f, clock); err != nil {
				t.Fatal(err)
			}
			st1, _ := os.Stat(path)
			if st1.Mode().Perm() != 0o644 {
				t.Errorf("new map mode %v, want 0644", st1.Mode().Perm())
			}
			if want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC); !st1.ModTime().Equal(want) {
				t.Errorf("first mtime %v, want %v", st1.ModTime(), want)
			}
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
			old, err := os.Open(path) // a reader holding the old map
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			ino := inode(t, path)
			if err := WriteFile(path, testEntries(9), f, clock); err != nil {
				t.Fatal(err)
			}
			st2, _ := os.Stat(path)
			if inode(t, path) == ino {
				t.Error("map rewritten in place, want a new inode")
			}
			if !st2.ModTime().Equal(st1.ModTime().Add(time.Second)) {
				t.Errorf("mtime %v after %v, want one second later", st2.ModTime(), st1.ModTime())
			}
			if st2.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want the old 0640", st2.Mode().Perm())
			}
			var ost syscall.Stat_t
			if err := syscall.Fstat(int(old.Fd()), &ost); err != nil || ost.Nlink != 0 {
				t.Errorf("old inode has %d links (%v): Postfix would not notice the change", ost.Nlink, err)
			}
			m, err := ReadFile(path, f, false)
			if err != nil || len(m.Entries()) != 9 {
				t.Fatalf("read back: %v", err)
			}
			// A failed write leaves the map as it was and no temp file.
			dup := append(testEntries(2), testEntries(1)...)
			if err := WriteFile(path, dup, f, clock); err == nil {
				t.Fatal("duplicate keys written")
			}
			if m, err := ReadFile(path, f, false); err != nil || len(m.Entries()) != 9 {
				t.Errorf("after a failed write: %v", err)
			}
			files, _ := os.ReadDir(dir)
			if len(files) != 1 {
				t.Errorf("directory holds %d files, want only the map", len(files))
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	for _, f := range []Format{CDB, LMDB, Hash} {
		t.Run(f.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m"+f.Extension())
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := Update(path, f, time.Now, func(es []accessdb.Entry) ([]accessdb.Entry, error) {
						return append(es, accessdb.Entry{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}), nil
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			m, err := ReadFile(path, f, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Entries()) != 8 {
				t.Errorf("%d entries after 8 concurrent updates, want 8 (an update was lost)", len(m.Entries()))
			}
			failed := errors.New("edit failed")
			before, _ := os.ReadFile(path)
			err = Update(path, f, time.Now, func([]accessdb.Entry) ([]accessdb.Entry, error) { return nil, failed })
			if !errors.Is(err, failed) {
				t.Errorf("Update = %v, want the edit's error", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("a failed edit changed the file")
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "missing.cdb"), CDB, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.cdb")
	if err := os.WriteFile(bad, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad, 0, true); err == nil {
		t.Error("corrupt cdb accepted")
	}
	badl := filepath.Join(dir, "bad.lmdb")
	if err := os.WriteFile(badl, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(badl, LMDB, false); err == nil {
		t.Error("zeroed lmdb accepted")
	}
}

func TestPostmapForm(t *testing.T) {
	in := []accessdb.Entry{{Key: []byte("a"), Value: []byte("OK")}, {Key: []byte("b\x00"), Value: []byte{}}, {Key: []byte{}, Value: []byte("x\x00")}}
	got := PostmapForm(LMDB, in)
	want := []string{"a\x00=OK\x00", "b\x00=\x00", "\x00=x\x00"}
	for i, e := range got {
		if s := string(e.Key) + "=" + string(e.Value); s != want[i] {
			t.Errorf("entry %d = %q, want %q", i, s, want[i])
		}
	}
	if string(in[0].Key) != "a" {
		t.Error("PostmapForm changed its input")
	}
	for _, f := range []Format{Hash, Hash185, CDB} {
		if out := PostmapForm(f, in); &out[0] != &in[0] {
			t.Errorf("%v entries changed", f)
		}
	}
}

// TestReplaceFailedRename leaves no temporary file behind when the rename
// fails (here: a directory stands where the map should go).
func TestReplaceFailedRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "popgate.cdb")
	if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, testEntries(3), CDB, time.Now); err == nil {
		t.Fatal("WriteFile over a directory succeeded")
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 || files[0].Name() != "popgate.cdb" {
		t.Errorf("directory holds %v, want only the obstacle", files)
	}
}
