//go:build unix

package main

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// tryFlockShared takes a shared, non-blocking flock(2) on f; false when a
// writer holds it.
func tryFlockShared(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		default:
			return false, err
		}
	}
}

// tryFcntlRead takes a non-blocking fcntl(2) read lock on all of f; false
// when a writer holds a lock on it.
func tryFcntlRead(f *os.File) (bool, error) {
	lk := syscall.Flock_t{Type: syscall.F_RDLCK, Whence: io.SeekStart}
	for {
		err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EACCES):
			return false, nil
		default:
			return false, err
		}
	}
}
