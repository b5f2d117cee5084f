//go:build !unix

package auth

// flockFile has no cross-process lock off Unix; the in-process mutex that
// editLock takes as well still serialises goroutines.
func flockFile(string) (func(), error) { return func() {}, nil }
