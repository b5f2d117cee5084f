package pop3test_test

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
)

// scripted serves one connection: it answers each line it reads with
// the next reply in replies, then closes.
func scripted(t *testing.T, replies ...string) (addr string, got chan []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got = make(chan []string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var lines []string
		c.Write([]byte(replies[0]))
		for _, rep := range replies[1:] {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, line)
			c.Write([]byte(rep))
		}
		got <- lines
	}()
	return l.Addr().String(), got
}

// TestLoginRetrUIDL: Login, UIDL and Retr send the right commands in
// CRLF and read multi-line answers with dots un-stuffed; Closed sees the
// server hang up.
func TestLoginRetrUIDL(t *testing.T) {
	addr, sent := scripted(t,
		"+OK ready\r\n",
		"+OK\r\n",
		"+OK locked\r\n",
		"+OK\r\n1 u1\r\n2 u2\r\n.\r\n",
		"+OK 12 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n",
		"+OK bye\r\n",
	)
	c := pop3test.DialFrom(t, "127.0.0.3", addr)
	c.Login("alice", "secret")
	if uids := c.UIDL(); strings.Join(uids, ",") != "u1,u2" {
		t.Errorf("UIDL = %q", uids)
	}
	if msg := c.Retr(2); msg != "Subject: x\r\n\r\n.dot\r\n" {
		t.Errorf("Retr = %q", msg)
	}
	c.Run([]pop3test.Step{{Send: "QUIT", Want: "+OK bye"}, {Want: pop3test.ClosedReply}})
	want := "USER alice\r\n|PASS secret\r\n|UIDL\r\n|RETR 2\r\n|QUIT\r\n"
	if got := strings.Join(<-sent, "|"); got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
}
