package mapfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// replace writes data to a new file next to path and renames it over
// path: create a temporary file in the same directory, write, set mode,
// owner and mtime, fsync, close, rename, fsync the directory. On any
// error the temporary file is removed and path is untouched. It is
// maildir/durable.WriteFile's sequence plus the owner and the strictly
// growing mtime, which must be in place before the rename makes the file
// visible.
func replace(path string, data []byte, now func() time.Time) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	mtime := now().Truncate(time.Second)
	uid, gid := -1, -1
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
		if next := st.ModTime().Truncate(time.Second).Add(time.Second); next.After(mtime) {
			mtime = next
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mapfile: write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("mapfile: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("mapfile: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("mapfile: write %s: %w", path, err)
	}
	// Keep the old file's owner when allowed (root replacing a map that
	// belongs to postfix); an unprivileged writer keeps its own.
	if uid >= 0 && (uid != os.Getuid() || gid != os.Getgid()) {
		if err := tmp.Chown(uid, gid); err != nil && !errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("mapfile: write %s: chown: %w", path, err)
		}
	}
	if err := os.Chtimes(tmp.Name(), mtime, mtime); err != nil {
		return fmt.Errorf("mapfile: write %s: set mtime: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("mapfile: write %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mapfile: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mapfile: write %s: rename: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("mapfile: write %s: fsync directory: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// withDirLock runs fn holding an exclusive flock on path's directory, so
// that two writers of one replaced-by-rename map (the mirror and `popgate
// access put`) never interleave a read-modify-write. The map file itself
// cannot carry the lock: the rename replaces it.
func withDirLock(path string, fn func() error) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("mapfile: lock %s: %w", path, err)
	}
	defer d.Close()
	for {
		err = unix.Flock(int(d.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mapfile: lock %s: %w", path, err)
	}
	defer unix.Flock(int(d.Fd()), unix.LOCK_UN)
	return fn()
}
