//go:build unix

package durable

import "syscall"

// syncDirOS opens dir, fsyncs it and closes it with three system calls.
func syncDirOS(dir string) error {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = syscall.Fsync(fd)
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	return err
}
