//go:build unix

package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/afero"
)

// lockFile is the spool's lock; its name matches neither .msg nor .env,
// so scan leaves it alone.
const lockFile = "lock"

// lockDir takes an exclusive flock on the spool so that a second process
// cannot deliver (and duplicate) the same messages. Only a real
// filesystem can be locked; an in-memory one needs no lock.
func lockDir(fs afero.Fs, dir string) (func() error, error) {
	if _, ok := fs.(*afero.OsFs); !ok {
		return func() error { return nil }, nil
	}
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("queue: lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue: %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("queue: lock %s: %w", p, err)
	}
	return f.Close, nil
}
