//go:build unix

package auth

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// flockFile takes an exclusive flock(2) on path (created if missing) and
// returns the function that releases it. flock locks belong to the open
// file description, so two goroutines of one process exclude each other too.
func flockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auth: open lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("auth: flock %s: %w", path, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
	}, nil
}

// fileOwner returns the owner and group of a file on the OS filesystem,
// or -1, -1 where the FileInfo does not carry them (the in-memory one).
func fileOwner(st os.FileInfo) (uid, gid int) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid), int(sys.Gid)
	}
	return -1, -1
}
