//go:build !unix

package auth

import "os"

// flockFile has no cross-process lock off Unix; the in-process mutex that
// editLock takes as well still serialises goroutines.
func flockFile(string) (func(), error) { return func() {}, nil }

// fileOwner is not known off Unix.
func fileOwner(os.FileInfo) (uid, gid int) { return -1, -1 }
