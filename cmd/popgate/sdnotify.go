package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// sdNotify sends state (e.g. "READY=1", "RELOADING=1", "STOPPING=1",
// "STATUS=...") to the service manager named by $NOTIFY_SOCKET, as
// sd_notify(3) does, so that a Type=notify systemd unit knows when popgate
// is serving. Without $NOTIFY_SOCKET (not started by systemd, or a unit of
// another type) it does nothing. A name starting with '@' is a Linux
// abstract socket.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		// sd_notify(3) also accepts vsock:..., which popgate does not need.
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET=%q is neither a path nor an abstract socket", name)
	}
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	if name[0] == '@' {
		addr.Name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}
