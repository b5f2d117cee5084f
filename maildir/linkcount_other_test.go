//go:build !unix

package maildir

import "os"

func linkCount(os.FileInfo) uint64 { return 0 }
