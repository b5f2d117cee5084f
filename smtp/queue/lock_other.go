//go:build !unix

package queue

import "github.com/spf13/afero"

// lockDir is a no-op where flock does not exist.
func lockDir(afero.Fs, string) (func() error, error) { return func() error { return nil }, nil }
