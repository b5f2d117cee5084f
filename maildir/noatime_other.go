//go:build unix && !linux

package maildir

// oNoATime is Linux-only; elsewhere reads update atime as usual.
const oNoATime = 0
