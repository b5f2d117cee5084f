//go:build !unix

package maildir

import "os"

// osCRLFSize is crlfSize of a file on the OS filesystem.
func osCRLFSize(path string, buf []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return crlfSize(f, buf)
}
