package smtptest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/popgate/popgate/smtp/smtptest"
)

// TestClientAgainstSink: the dialog client delivers to the sink, which
// records the envelope and the body, refuses what it is told to, requires
// AUTH when asked, and hangs up on DropAll (Reply then returns "").
func TestClientAgainstSink(t *testing.T) {
	s := smtptest.NewSink(t)
	s.SetRcpt(func(to string) error {
		if to == "nobody@sink.test" {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	c := smtptest.DialFrom(t, "127.0.0.2", s.Addr)
	c.Hello("client.test")
	if got := c.Transact("a@client.test", "b@sink.test", "Subject: hi\r\n\r\n..dot\r\n"); !strings.HasPrefix(got, "250") {
		t.Fatalf("final dot: %q", got)
	}
	m := s.Wait(t)
	if m.From != "a@client.test" || len(m.To) != 1 || m.To[0] != "b@sink.test" || string(m.Body) != "Subject: hi\r\n\r\n.dot\r\n" {
		t.Fatalf("sink got %+v (%q)", m, m.Body)
	}
	c.Run([]smtptest.Step{
		{Send: "MAIL FROM:<a@client.test>", Want: "250"},
		{Send: "RCPT TO:<nobody@sink.test>", Want: "550 5.1.1"},
		{Send: "RSET", Want: "250"},
	})
	if n, sessions := s.Count(), len(s.Messages()); n != 1 || sessions != 1 {
		t.Fatalf("count %d, messages %d", n, sessions)
	}

	s.RequireAuth("u", "p")
	a := smtptest.Dial(t, s.Addr)
	a.Hello("client.test")
	a.Expect("MAIL FROM:<a@client.test>", "530")
	a.AuthPlain("u", "p")
	a.Expect("MAIL FROM:<a@client.test>", "250")

	if sessions, maxActive, _ := s.Stats(); sessions != 2 || maxActive != 2 || s.Active() != 2 {
		t.Fatalf("stats: %d sessions, %d at most, %d active", sessions, maxActive, s.Active())
	}
	s.DropAll()
	if got := a.Cmd("NOOP"); got != "" {
		t.Fatalf("after DropAll: %q, want the connection closed", got)
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{
		"250-a\r\n250-b\r\n250 c\r\n": "250 c",
		"220 hi\r\n":                  "220 hi",
		"":                            "",
	} {
		if got := smtptest.LastLine(in); got != want {
			t.Errorf("LastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// recorder is a testing.TB whose Fatalf records the failure and ends the
// goroutine, as the real one does, so a test can check that a helper
// fails.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs f with a recorder in its own goroutine and returns what it
// failed with ("" if it did not).
func fails(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

// TestMismatchFails: Expect and Run fail the test on a reply with the
// wrong code, so dialog tables built on them can fail.
func TestMismatchFails(t *testing.T) {
	s := smtptest.NewSink(t)
	c := smtptest.Dial(t, s.Addr)
	c.Hello("client.test")
	if msg := fails(t, func(tb testing.TB) {
		smtptest.NewClient(tb, c.Conn).Expect("NOOP", "550")
	}); !strings.Contains(msg, `"NOOP"`) {
		t.Errorf("Expect on a 250 wanting 550: %q", msg)
	}
	if msg := fails(t, func(tb testing.TB) {
		smtptest.NewClient(tb, c.Conn).Run([]smtptest.Step{{Send: "NOOP", Want: "250"}, {Send: "RCPT TO:<b@sink.test>", Want: "250"}})
	}); !strings.Contains(msg, "step 1") {
		t.Errorf("Run with RCPT before MAIL: %q", msg)
	}
}
