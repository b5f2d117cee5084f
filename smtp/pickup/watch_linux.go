package pickup

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watchDir kicks whenever a file in dir changes its mode (a maildrop file
// is complete when its writer makes it 0744) or is moved in, so a message
// left while the server runs is picked up at once rather than at the next
// poll. The returned function stops watching.
func watchDir(dir string, kick chan<- struct{}) (stop func(), err error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pickup: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_ATTRIB|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pickup: inotify %s: %w", dir, err)
	}
	// A non-blocking fd wrapped by os.NewFile uses the runtime poller, so
	// Close ends a pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case kick <- struct{}{}:
			default: // a drain is already due
			}
		}
	}()
	return func() { f.Close() }, nil
}
