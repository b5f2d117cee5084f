package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"
)

// spoolLockPoll is how often a held spool lock is tried again.
const spoolLockPoll = 100 * time.Millisecond

// errSpoolBusy means a spool file stayed locked for the whole wait.
var errSpoolBusy = errors.New("spool file locked by another program")

// spoolLock is what importing holds on a mail spool file so that
// mail.local and qpopper do not change it meanwhile: their NAME.lock
// dot-lock in the spool directory, and a shared flock(2) and fcntl(2)
// read lock on the file itself (mail.local and qpopper take one or the
// other, depending on how they were built, always exclusively to write).
type spoolLock struct {
	dotLock string // path of the dot-lock made, "" when none
}

// lockSpool takes the locks on f, the open spool file at path, waiting up
// to wait for each. When the spool directory does not let us create the
// dot-lock (read-only spool copy, no write permission) it warns through
// warn and goes on under flock and fcntl alone: mail.local takes those
// too, and a spool we cannot write to is one qpopper no longer runs on.
func lockSpool(ctx context.Context, f *os.File, path string, wait time.Duration, warn func(string)) (*spoolLock, error) {
	l := &spoolLock{}
	deadline := time.Now().Add(wait)
	dot := path + ".lock"
	err := retryLock(ctx, deadline, func() (bool, error) {
		lf, err := os.OpenFile(dot, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		switch {
		case err == nil:
			_, werr := lf.WriteString(strconv.Itoa(os.Getpid()) + "\n")
			if cerr := lf.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				_ = os.Remove(dot)
				return false, werr
			}
			l.dotLock = dot
			return true, nil
		case errors.Is(err, fs.ErrExist):
			return false, nil
		case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
			warn(fmt.Sprintf("cannot create dot-lock %s (%v); reading under flock and fcntl locks only", dot, err))
			return true, nil
		default:
			return false, err
		}
	})
	if err != nil {
		return nil, fmt.Errorf("dot-lock %s: %w (remove it if no mail.local or qpopper holds it)", dot, err)
	}
	if err := retryLock(ctx, deadline, func() (bool, error) { return tryFlockShared(f) }); err != nil {
		l.release()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	if err := retryLock(ctx, deadline, func() (bool, error) { return tryFcntlRead(f) }); err != nil {
		l.release()
		return nil, fmt.Errorf("fcntl lock %s: %w", path, err)
	}
	return l, nil
}

// release removes the dot-lock. The flock and fcntl locks go with the
// file descriptor when the caller closes the file.
func (l *spoolLock) release() {
	if l.dotLock != "" {
		_ = os.Remove(l.dotLock)
		l.dotLock = ""
	}
}

// retryLock calls try until it succeeds, fails, or deadline passes.
func retryLock(ctx context.Context, deadline time.Time, try func() (bool, error)) error {
	for {
		ok, err := try()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errSpoolBusy
		}
		t := time.NewTimer(min(left, spoolLockPoll))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
