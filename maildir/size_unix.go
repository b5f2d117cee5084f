//go:build unix

package maildir

import (
	"errors"
	iofs "io/fs"
	"syscall"
)

// osCRLFSize is crlfSize of a file on the OS filesystem, read with plain
// system calls. os.Open costs several extra calls per file (registering
// with the poller fails for regular files); on a first scan of 100,000
// small files those calls are a third of the time.
func osCRLFSize(path string, buf []byte) (int64, error) {
	// O_NOATIME: a first scan must not turn 100,000 reads into 100,000
	// inode writes (relatime updates atime on the first read after a
	// write). Only the files' owner may ask for it, so retry without.
	fd, err := openRetry(path, syscall.O_RDONLY|syscall.O_CLOEXEC|oNoATime)
	if oNoATime != 0 && errors.Is(err, syscall.EPERM) {
		fd, err = openRetry(path, syscall.O_RDONLY|syscall.O_CLOEXEC)
	}
	if err != nil {
		return 0, &iofs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var c crlfCounter
	for {
		k, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, &iofs.PathError{Op: "read", Path: path, Err: err}
		}
		if k == 0 {
			return c.n, nil
		}
		c.add(buf[:k])
	}
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(path, flags, 0)
		if !errors.Is(err, syscall.EINTR) {
			return fd, err
		}
	}
}
