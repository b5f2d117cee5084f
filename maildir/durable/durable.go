// Package durable writes files so that after a crash they are either
// entirely the old version or entirely the new one, never a mix or empty.
package durable

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"
)

// tmpSeq makes temporary names unique within the process; the pid and a
// timestamp make them unique across processes.
var tmpSeq atomic.Uint64

// WriteFile writes what r yields to path durably: into a temporary file
// in the same directory, fsynced, renamed over path, then the directory is
// fsynced so the rename itself survives a power loss. perm is applied to a
// new file; an existing file's mode is kept.
func WriteFile(fs afero.Fs, path string, r io.Reader, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if st, statErr := fs.Stat(path); statErr == nil {
		perm = st.Mode().Perm()
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp.%d.%d.%d", filepath.Base(path),
		os.Getpid(), time.Now().UnixNano(), tmpSeq.Add(1)))
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("durable: create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = fs.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		_ = f.Close()
		return fmt.Errorf("durable: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("durable: fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("durable: close %s: %w", tmp, err)
	}
	// OpenFile's perm is masked by the umask; make the mode exactly perm.
	if err = fs.Chmod(tmp, perm); err != nil {
		return fmt.Errorf("durable: chmod %s: %w", tmp, err)
	}
	if err = fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("durable: rename %s: %w", path, err)
	}
	return SyncDir(fs, dir)
}

// WriteBytes is WriteFile for data already in memory.
func WriteBytes(fs afero.Fs, path string, data []byte, perm os.FileMode) error {
	return WriteFile(fs, path, bytesReader(data), perm)
}

// SyncDir fsyncs a directory so that entries created, renamed or removed
// in it are on disk. On filesystems without directory sync (the in-memory
// one used in tests) it is a no-op.
func SyncDir(fs afero.Fs, dir string) error {
	if _, ok := fs.(*afero.OsFs); ok {
		// Straight to the system calls: os.Open would add four fcntl(2)s to
		// every fsync of a directory, once per delivered message.
		if err := syncDirOS(dir); err != nil {
			return fmt.Errorf("durable: fsync dir %s: %w", dir, err)
		}
		return nil
	}
	d, err := fs.Open(dir)
	if err != nil {
		return fmt.Errorf("durable: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("durable: fsync dir %s: %w", dir, err)
	}
	return nil
}

// UniqueSuffix returns a string that is unique for this process's lifetime,
// for callers that build their own temporary names.
func UniqueSuffix() string {
	return strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(tmpSeq.Add(1), 10)
}

type byteReader struct {
	b []byte
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
