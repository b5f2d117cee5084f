//go:build !unix

package main

import "os"

// Without flock and fcntl only the dot-lock protects the spool file.
func tryFlockShared(*os.File) (bool, error) { return true, nil }
func tryFcntlRead(*os.File) (bool, error)   { return true, nil }
