package maildir

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/afero"
)

// lockFile is the file flock(2)ed in each maildir while a session holds it,
// so two popgate processes exclude each other. It is never removed:
// unlinking a lock file lets a third process lock a fresh inode.
const lockFile = "popgate.lock"

// fdFile is implemented by files of the OS filesystem (*os.File).
type fdFile interface {
	Fd() uintptr
}

// Lock takes the mailbox exclusively, for one POP3 session. It fails with
// ErrLocked when this process already holds it, or when another process
// holds the flock on <maildir>/popgate.lock (on the OS filesystem; the
// kernel releases that if the holder dies, even by kill -9). It creates a
// missing maildir, and removes files a crashed delivery left in tmp/.
// unlock releases it; calling unlock again does nothing.
func (m *Mailbox) Lock() (unlock func() error, err error) {
	s := m.s
	s.mu.Lock()
	if s.locked[m.dir] {
		s.mu.Unlock()
		return nil, fmt.Errorf("maildir: lock %s: %w", m.dir, ErrLocked)
	}
	s.locked[m.dir] = true
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		delete(s.locked, m.dir)
		s.mu.Unlock()
	}

	f, err := m.lockOS()
	if err != nil {
		release()
		return nil, err
	}
	m.cleanTmp()
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			if f != nil {
				// Closing the descriptor drops the flock.
				if cerr := f.Close(); cerr != nil {
					err = fmt.Errorf("maildir: unlock %s: %w", m.dir, cerr)
				}
			}
			release()
		})
		return err
	}, nil
}

// lockOS opens and flocks the lock file. On filesystems without file
// descriptors (MemMapFs) it returns nil: the in-process lock is all there is.
func (m *Mailbox) lockOS() (afero.File, error) {
	if err := m.s.ensureMaildir(m.dir); err != nil {
		return nil, fmt.Errorf("maildir: lock: %w", err)
	}
	p := filepath.Join(m.dir, lockFile)
	f, err := m.s.fs.OpenFile(p, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("maildir: lock %s: %w", p, err)
	}
	fd, ok := f.(fdFile)
	if !ok {
		_ = f.Close()
		return nil, nil
	}
	if err := flock(fd.Fd()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("maildir: lock %s: %w", p, err)
	}
	return f, nil
}

// staleTmpAge is when a file in tmp/ is a crashed delivery's leftover:
// maildir(5) says 36 hours without access.
const staleTmpAge = 36 * time.Hour

// cleanTmp removes stale files from tmp/. Failures are only logged: they
// cost disk space, not mail.
func (m *Mailbox) cleanTmp() {
	dir := filepath.Join(m.dir, subTmp)
	infos, err := afero.ReadDir(m.s.fs, dir)
	if err != nil {
		m.s.log.Warn("maildir: clean tmp", "dir", dir, "err", err)
		return
	}
	cutoff := m.s.now().Add(-staleTmpAge)
	for _, fi := range infos {
		if fi.IsDir() || !fi.ModTime().Before(cutoff) {
			continue
		}
		p := filepath.Join(dir, fi.Name())
		if err := m.s.fs.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			m.s.log.Warn("maildir: clean tmp", "path", p, "err", err)
		}
	}
}
