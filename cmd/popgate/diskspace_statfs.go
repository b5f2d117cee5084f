//go:build linux || darwin || freebsd

package main

import "golang.org/x/sys/unix"

// freeBytes returns the octets an unprivileged process may still write
// on the filesystem holding path (root's reserved blocks excluded).
func freeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	// The field types differ between systems, hence the conversions.
	return int64(st.Bavail) * int64(st.Bsize), nil
}
