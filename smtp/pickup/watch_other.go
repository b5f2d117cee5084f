//go:build !linux

package pickup

import "errors"

// watchDir is Linux-only (inotify); elsewhere the maildrop is polled.
func watchDir(string, chan<- struct{}) (func(), error) {
	return nil, errors.New("pickup: no directory watch on this system")
}
