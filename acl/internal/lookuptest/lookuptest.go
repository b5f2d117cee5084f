// Package lookuptest runs acl's small lookup servers (acl/policyd,
// acl/socketmap) on a loopback listener for their tests and dials them.
// It is for _test.go files only.
package lookuptest

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/internal/connsrv"
)

// Timeout bounds a whole test connection.
const Timeout = 30 * time.Second

// Server is what both lookup servers provide.
type Server interface {
	Serve(net.Listener) error
	Close() error
}

// Start serves s on 127.0.0.1:0 and returns the address. When the test
// ends it closes s and checks that Serve returned connsrv.ErrServerClosed.
func Start(t testing.TB, s Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, connsrv.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String()
}

// Dial connects to addr with a deadline of Timeout; the connection is
// closed when the test ends.
func Dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(Timeout))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}
