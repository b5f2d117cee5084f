//go:build unix

package maildir

import (
	"errors"
	"syscall"
)

// flock takes an exclusive, non-blocking flock(2) on fd; a lock held
// elsewhere is ErrLocked.
func flock(fd uintptr) error {
	for {
		err := syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrLocked
		default:
			return err
		}
	}
}
