//go:build !unix

package maildir

// flock is a no-op where flock(2) does not exist: only the in-process lock
// excludes sessions there.
func flock(uintptr) error { return nil }
