package tlstest_test

import (
	"crypto/tls"
	"io"
	"testing"

	"github.com/popgate/popgate/auth/tlstest"
)

// TestHandshake: a client with Client completes a verified handshake
// with a server using Server, and a client that does not trust the pool
// or names another host is refused.
func TestHandshake(t *testing.T) {
	c := tlstest.New(t, "mail.example.com")
	l, err := tls.Listen("tcp", "127.0.0.1:0", c.Server)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = conn.Write([]byte("hi"))
			}()
		}
	}()
	dial := func(cfg *tls.Config) error {
		conn, err := tls.Dial("tcp", l.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = io.ReadAll(conn)
		return err
	}
	if err := dial(c.Client); err != nil {
		t.Fatalf("trusted client: %v", err)
	}
	ip := c.Client.Clone()
	ip.ServerName = "127.0.0.1"
	if err := dial(ip); err != nil {
		t.Fatalf("client by IP: %v", err)
	}
	other := c.Client.Clone()
	other.ServerName = "other.example.com"
	if err := dial(other); err == nil {
		t.Error("client naming another host was accepted")
	}
	if err := dial(&tls.Config{ServerName: "mail.example.com"}); err == nil {
		t.Error("client without the pool was accepted")
	}
}
