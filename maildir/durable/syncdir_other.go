//go:build !unix

package durable

import "os"

// syncDirOS fsyncs dir through the os package.
func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
