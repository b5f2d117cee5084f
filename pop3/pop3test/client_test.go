package pop3test_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
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

// recorder is a testing.TB whose Fatalf records the failure and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestMismatchFails: Run fails on a reply with the wrong prefix and on a
// body that differs, so dialog tables built on it can fail.
func TestMismatchFails(t *testing.T) {
	for name, tc := range map[string]struct {
		steps []pop3test.Step
		want  string
	}{
		"reply": {[]pop3test.Step{{Want: "+OK"}, {Send: "STAT", Want: "+OK 2"}}, "step 1"},
		"body":  {[]pop3test.Step{{Want: "+OK"}, {Send: "LIST", Want: "+OK", Body: []string{"1 10"}}}, "body"},
	} {
		t.Run(name, func(t *testing.T) {
			addr, _ := scripted(t, "+OK ready\r\n", "+OK 1 10\r\n1 12\r\n.\r\n")
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				pop3test.Dial(r, addr).Run(tc.steps)
			}()
			<-done
			if !strings.Contains(r.msg, tc.want) {
				t.Errorf("failure %q, want it to mention %q", r.msg, tc.want)
			}
		})
	}
}
