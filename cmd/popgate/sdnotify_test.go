package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify binds a unixgram socket like systemd's notify socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	if strings.HasPrefix(name, "@") {
		addr.Name = "\x00" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSdNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	for _, state := range []string{"READY=1", "STATUS=serving 5 listeners\nMAINPID=42", "STOPPING=1"} {
		if err := sdNotify(state); err != nil {
			t.Fatal(err)
		}
		if got := readDatagram(t, c); got != state {
			t.Errorf("got %q, want %q", got, state)
		}
	}
}

func TestSdNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@popgate-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := listenNotify(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if got := readDatagram(t, c); got != "READY=1" {
		t.Errorf("got %q", got)
	}
}

func TestSdNotifyUnsetIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("unset NOTIFY_SOCKET: %v", err)
	}
}

func TestSdNotifyErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ socket, want string }{
		{filepath.Join(dir, "missing"), "sd_notify: "},
		{"relative/notify", "neither a path nor an abstract socket"},
		{"vsock:2:1234", "neither a path nor an abstract socket"},
		{"@popgate-no-such-abstract-socket-" + fmt.Sprint(time.Now().UnixNano()), "sd_notify: "},
	} {
		t.Setenv("NOTIFY_SOCKET", tc.socket)
		if err := sdNotify("READY=1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NOTIFY_SOCKET=%q: %v, want an error containing %q", tc.socket, err, tc.want)
		}
	}
}
