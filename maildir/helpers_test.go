package maildir

import (
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// testTime is the clock reading of every test delivery: 2024-11-19T07:06:40.123456Z.
var testTime = time.Unix(1732000000, 123456000)

func fixedClock() time.Time { return testTime }

func newMemStore(t *testing.T) (*Store, afero.Fs) {
	t.Helper()
	fs := afero.NewMemMapFs()
	return NewStore(fs, "/data/mail", Options{Hostname: "mx.example.com", Now: fixedClock}), fs
}

// writeFile puts a file into a maildir the way another program would.
func writeFile(t *testing.T, fs afero.Fs, path, content string) {
	t.Helper()
	if err := fs.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fs, path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, fs afero.Fs, path string) string {
	t.Helper()
	b, err := afero.ReadFile(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirNames lists a directory, sorted; a missing directory is empty.
func dirNames(t *testing.T, fs afero.Fs, dir string) []string {
	t.Helper()
	f, err := fs.Open(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func mustOpen(t *testing.T, s *Store, domain, local string) *Mailbox {
	t.Helper()
	mb, err := s.Open(domain, local)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func mustList(t *testing.T, mb *Mailbox) []Message {
	t.Helper()
	msgs, err := mb.List()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func readMessage(t *testing.T, mb *Mailbox, msg Message) string {
	t.Helper()
	rc, err := mb.Open(msg)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countingFs counts opens of message files (paths with /new/ or /cur/),
// and can make chosen paths look vanished.
type countingFs struct {
	afero.Fs
	opens    atomic.Int64
	mu       sync.Mutex
	vanished map[string]bool
}

func (c *countingFs) Open(name string) (afero.File, error) {
	if strings.Contains(name, "/new/") || strings.Contains(name, "/cur/") {
		c.opens.Add(1)
		c.mu.Lock()
		gone := c.vanished[name]
		c.mu.Unlock()
		if gone {
			return nil, &iofs.PathError{Op: "open", Path: name, Err: iofs.ErrNotExist}
		}
	}
	return c.Fs.Open(name)
}

// readOnlyDirFs is the OS filesystem with one directory tree made
// read-only, as a read-only mount or a permission change would (tests run
// as root, where chmod alone does not stop writes).
type readOnlyDirFs struct {
	afero.Fs
	dir string
}

func (f readOnlyDirFs) denied(op, p string) error {
	if p == f.dir || strings.HasPrefix(p, f.dir+string(filepath.Separator)) {
		return &iofs.PathError{Op: op, Path: p, Err: iofs.ErrPermission}
	}
	return nil
}

func (f readOnlyDirFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0 {
		if err := f.denied("open", name); err != nil {
			return nil, err
		}
	}
	return f.Fs.OpenFile(name, flag, perm)
}

func (f readOnlyDirFs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (f readOnlyDirFs) Rename(oldname, newname string) error {
	if err := f.denied("rename", oldname); err != nil {
		return err
	}
	if err := f.denied("rename", newname); err != nil {
		return err
	}
	return f.Fs.Rename(oldname, newname)
}

func (f readOnlyDirFs) Remove(name string) error {
	if err := f.denied("remove", name); err != nil {
		return err
	}
	return f.Fs.Remove(name)
}

func (f readOnlyDirFs) Link(oldname, newname string) error {
	if err := f.denied("link", newname); err != nil {
		return err
	}
	return os.Link(oldname, newname)
}
