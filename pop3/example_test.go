package pop3_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/popgate/popgate/pop3"
)

// oneUser accepts alice@example.com with password "secret".
type oneUser struct{}

func (oneUser) Authenticate(_ context.Context, _ netip.Addr, user, password string) (string, error) {
	if user != "alice@example.com" || password != "secret" {
		return "", pop3.ErrBadCredentials
	}
	return user, nil
}

// oneMessage is a maildrop holding one message for everybody.
type oneMessage struct{}

func (oneMessage) Open(context.Context, string) (pop3.Mailbox, error) { return mailbox{}, nil }

type mailbox struct{}

const message = "Subject: hello\n\nHi Alice.\n"

func (mailbox) List() ([]pop3.MessageInfo, error) {
	return []pop3.MessageInfo{{UID: "msg-1", Size: int64(len(message) + 3)}}, nil // 3 LF become CRLF
}
func (mailbox) Open(int) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(message)), nil }
func (mailbox) Commit([]int) error              { return nil }
func (mailbox) Close() error                    { return nil }

// printer reports logins, as a POP-before-SMTP grant store would.
type printer struct{}

func (printer) LoginSucceeded(user string, ip netip.Addr) {
	fmt.Printf("[observer] %s logged in from %s\n", user, ip)
}

func Example() {
	srv := pop3.NewServer(pop3.Config{Hostname: "pop.example.com"}, oneUser{}, oneMessage{}, printer{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	readLine := func() string {
		s, _ := r.ReadString('\n')
		return strings.TrimRight(s, "\r\n")
	}
	fmt.Println(readLine())
	for _, cmd := range []string{"USER alice@example.com", "PASS secret", "STAT", "UIDL 1", "RETR 1"} {
		fmt.Fprintf(conn, "%s\r\n", cmd)
		fmt.Println(readLine())
	}
	for line := readLine(); line != "."; line = readLine() {
		fmt.Printf("  %q\n", line)
	}
	fmt.Fprintf(conn, "QUIT\r\n")
	fmt.Println(readLine())
	// Output:
	// +OK pop.example.com POP3 server ready
	// +OK send PASS
	// [observer] alice@example.com logged in from 127.0.0.1
	// +OK maildrop locked and ready, 1 messages (29 octets)
	// +OK 1 29
	// +OK 1 msg-1
	// +OK 29 octets
	//   "Subject: hello"
	//   ""
	//   "Hi Alice."
	// +OK pop.example.com POP3 server signing off (1 messages left)
}
