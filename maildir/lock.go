package maildir

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// Lock takes the mailbox exclusively, for one POP3 session. It fails with
// ErrLocked when this process already holds it, or when another process
// (on this machine or another sharing the maildirs) holds an unexpired
// lease on it (<maildir>/popgate.lease, see leaseFile). The lease is
// renewed every Options.LeaseRenew while the session lives; one left by a
// process that died, even by kill -9, expires after Options.LeaseTTL and
// is then taken over. Lock creates a missing maildir, and removes files a
// crashed delivery left in tmp/. unlock releases it; calling unlock again
// does nothing.
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

	if err := s.ensureMaildir(m.dir); err != nil {
		release()
		return nil, fmt.Errorf("maildir: lock: %w", err)
	}
	l, err := s.acquireLease(m.dir)
	if isDiskFull(err) {
		// A full mail filesystem must not stop POP3: users read and delete
		// their mail to make room. The session keeps this process's lock;
		// only the exclusion of other instances sharing mail_dir is off
		// until the lease file fits again.
		s.log.Warn("maildir: lease not written, disk full: locked in this process only", "dir", m.dir, "err", err)
		m.lease = nil
		m.cleanTmp()
		var once sync.Once
		return func() error { once.Do(release); return nil }, nil
	}
	if err != nil {
		release()
		return nil, err
	}
	m.lease = l
	stop := make(chan struct{})
	done := make(chan struct{})
	go l.keep(stop, done)
	m.cleanTmp()
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			close(stop)
			<-done
			err = l.release()
			release()
		})
		return err
	}, nil
}

// keep renews the lease every LeaseRenew until stop is closed. A lost
// lease is logged; the session notices at its next commit (checkLease).
func (l *lease) keep(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(l.s.leaseRenew)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := l.renew(); err != nil {
				l.s.log.Error("maildir: lease not renewed", "dir", l.dir, "err", err)
				if errors.Is(err, errLeaseLost) {
					return
				}
			}
		}
	}
}

// isDiskFull reports whether err is the filesystem's "no space" or "quota
// exceeded".
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// checkLease fails when the mailbox was locked by this Mailbox and its
// lease has since been lost (expired while renewals failed, and taken
// over): changing the maildir then could undo another session's work.
func (m *Mailbox) checkLease() error {
	if m.lease == nil {
		return nil
	}
	if err := m.lease.check(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrLocked)
	}
	return nil
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
