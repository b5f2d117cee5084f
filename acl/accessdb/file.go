package accessdb

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ReadFile decodes the hash file at path, taking a shared lock as sendmail
// does so that it never reads a half-written mirror.
func ReadFile(path string) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("accessdb: read %s: %w", path, err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH); err != nil {
		return nil, fmt.Errorf("accessdb: read %s: lock: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("accessdb: read %s: %w", path, err)
	}
	m, err := Decode(data)
	if err != nil {
		return nil, &pathError{op: "read", path: path, err: err}
	}
	return m, nil
}

// WriteFile replaces the map at path with entries, the access.db mirror
// write of DESIGN.md: open (creating it 0644) the .db file itself, lock it
// with flock(LOCK_EX), truncate and rewrite it in place (sendmail holds
// the inode, so no temp file and no rename), fsync, then set its mtime to
// max(now, previous mtime + 1 s) in whole seconds, because sendmail reopens
// a map only when its mtime grows. The lock is released last.
func WriteFile(path string, entries []Entry, f Format, now func() time.Time) error {
	data, err := Encode(entries, f)
	if err != nil {
		return &pathError{op: "write", path: path, err: err}
	}
	return withLockedFile(path, func(fh *os.File, _ []byte) ([]byte, error) { return data, nil }, now)
}

// Update reads the map at path, lets edit change its entries and writes
// the result back in f, all under one exclusive lock (for `popgate access
// put/del`). A missing or empty file counts as an empty map. When the
// file is corrupt or edit fails, the file is left untouched.
func Update(path string, f Format, now func() time.Time, edit func(entries []Entry) ([]Entry, error)) error {
	return withLockedFile(path, func(_ *os.File, old []byte) ([]byte, error) {
		var entries []Entry
		if len(old) > 0 {
			m, err := Decode(old)
			if err != nil {
				return nil, err
			}
			entries = m.Entries()
		}
		entries, err := edit(entries)
		if err != nil {
			return nil, err
		}
		return Encode(entries, f)
	}, now)
}

// withLockedFile opens path (creating it), locks it exclusively, reads it,
// asks build for the new content and, if build succeeds, rewrites the file
// in place and moves its mtime forward.
func withLockedFile(path string, build func(fh *os.File, old []byte) ([]byte, error), now func() time.Time) (err error) {
	fh, created, err := openOrCreate(path)
	if err != nil {
		return fmt.Errorf("accessdb: write %s: %w", path, err)
	}
	defer func() {
		if cerr := fh.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("accessdb: write %s: %w", path, cerr)
		}
	}()
	if err := flock(fh, unix.LOCK_EX); err != nil {
		return fmt.Errorf("accessdb: write %s: lock: %w", path, err)
	}
	defer flock(fh, unix.LOCK_UN)
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("accessdb: write %s: %w", path, err)
	}
	old, err := io.ReadAll(fh)
	if err != nil {
		return fmt.Errorf("accessdb: write %s: read: %w", path, err)
	}
	data, err := build(fh, old)
	if err != nil {
		if created {
			os.Remove(path) // leave no empty map behind
		}
		return &pathError{op: "update", path: path, err: err}
	}
	if err := rewrite(fh, data); err != nil {
		return fmt.Errorf("accessdb: write %s: %w", path, err)
	}
	mtime := now().Truncate(time.Second)
	if !created { // a new file has no earlier version a reader could hold
		mtime = nextMtime(st.ModTime(), now())
	}
	tv := unix.NsecToTimeval(mtime.UnixNano())
	if err := unix.Futimes(int(fh.Fd()), []unix.Timeval{tv, tv}); err != nil {
		return fmt.Errorf("accessdb: write %s: set mtime: %w", path, err)
	}
	return nil
}

// openOrCreate opens path for writing, creating it 0644 if missing, and
// reports whether it created it.
func openOrCreate(path string) (*os.File, bool, error) {
	for {
		fh, err := os.OpenFile(path, os.O_RDWR, 0)
		if !errors.Is(err, os.ErrNotExist) {
			return fh, false, err
		}
		fh, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) {
			return fh, err == nil, err
		}
	}
}

// rewrite replaces the file's content in place and syncs it. It writes
// before it truncates, so the file is never empty on the way, even for a
// reader that ignores the lock.
func rewrite(fh *os.File, data []byte) error {
	if _, err := fh.WriteAt(data, 0); err != nil {
		return err
	}
	if err := fh.Truncate(int64(len(data))); err != nil {
		return err
	}
	return fh.Sync()
}

// nextMtime is max(now, prev + 1 s), truncated to whole seconds: sendmail
// compares mtimes in seconds and reopens a map only when it grew.
func nextMtime(prev, now time.Time) time.Time {
	next := prev.Truncate(time.Second).Add(time.Second)
	if n := now.Truncate(time.Second); n.After(next) {
		next = n
	}
	return next
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// pathError names the file an accessdb error (corrupt map, duplicate key,
// failed edit) happened in, without repeating the package prefix.
type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string {
	return fmt.Sprintf("accessdb: %s %s: %s", e.op, e.path, strings.TrimPrefix(e.err.Error(), "accessdb: "))
}

func (e *pathError) Unwrap() error { return e.err }
