package pop3

import (
	"fmt"
	"strings"
	"testing"
)

var capaAuthPlain = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION popgate", "USER", "SASL PLAIN LOGIN"}
var capaTransaction = []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION popgate"}

var msg1Lines = []string{"From: bob@example.com", "Subject: one", "", "Hello", ".dot line", "..two dots", "last"}

// TestAuthorizationDialogs covers every command in the AUTHORIZATION
// state with good and bad arguments; each case is its own connection
// because three mistakes close a session.
func TestAuthorizationDialogs(t *testing.T) {
	t.Parallel()
	cases := map[string][]step{
		"greeting and CAPA": {
			{"", "+OK pop.example.com POP3 server ready", nil},
			{"CAPA", "+OK", capaAuthPlain},
			{"capa", "+OK", capaAuthPlain},
			{"QUIT", "+OK pop.example.com POP3 server signing off", nil},
			{"", "<closed>", nil},
		},
		"transaction commands refused": {
			{"", "+OK", nil},
			{"STAT", "-ERR STAT not valid in this state", nil},
			{"RETR 1", "-ERR RETR not valid in this state", nil},
			{"QUIT", "+OK", nil},
		},
		"more wrong state": {
			{"", "+OK", nil},
			{"LIST", "-ERR LIST not valid", nil}, {"UIDL", "-ERR UIDL not valid", nil}, {"QUIT", "+OK", nil},
		},
		"wrong state 3": {
			{"", "+OK", nil},
			{"DELE 1", "-ERR DELE not valid", nil}, {"NOOP", "-ERR NOOP not valid", nil}, {"QUIT", "+OK", nil},
		},
		"wrong state 4": {
			{"", "+OK", nil},
			{"RSET", "-ERR RSET not valid", nil}, {"TOP 1 1", "-ERR TOP not valid", nil}, {"QUIT", "+OK", nil},
		},
		"unknown command": {
			{"", "+OK", nil},
			{"XYZZY", "-ERR unknown command", nil},
			{" ", "-ERR unknown command", nil}, // empty keyword
			{"USER alice", "+OK", nil},
		},
		"USER arguments": {
			{"", "+OK", nil},
			{"USER", "-ERR wrong number of arguments for USER", nil},
			{"PASS secret", "-ERR USER first", nil},
			{"USER alice", "+OK send PASS", nil},
		},
		"PASS without argument": {
			{"", "+OK", nil},
			{"USER alice", "+OK", nil},
			{"PASS", "-ERR wrong number of arguments", nil},
			{"PASS secret", "+OK maildrop locked and ready, 3 messages", nil},
		},
		"bad password and unknown user answer alike": {
			{"", "+OK", nil},
			{"USER alice", "+OK", nil},
			{"PASS wrong", "-ERR [AUTH] authentication failed", nil},
			{"USER nobody@example.com", "+OK send PASS", nil},
			{"PASS wrong", "-ERR [AUTH] authentication failed", nil},
			{"XYZZY", "-ERR unknown command", nil},
			{"USER alice", "+OK", nil},
			{"PASS wrong", "-ERR [AUTH] authentication failed, too many failed logins, closing connection", nil},
			{"", "<closed>", nil},
		},
		"failed PASS needs new USER": {
			{"", "+OK", nil},
			{"USER alice", "+OK", nil},
			{"PASS wrong", "-ERR [AUTH] authentication failed", nil},
			{"PASS secret", "-ERR USER first", nil},
			{"USER ALICE@example.com", "+OK", nil},
			{"PASS secret", "+OK maildrop locked", nil},
		},
		"password with spaces": {
			{"", "+OK", nil},
			{"USER bob", "+OK", nil},
			{"PASS pass word", "+OK maildrop locked and ready, 0 messages (0 octets)", nil},
			{"STAT", "+OK 0 0", nil},
			{"LIST", "+OK 0 messages", []string{}},
			{"QUIT", "+OK pop.example.com POP3 server signing off (0 messages left)", nil},
		},
		"bare LF line endings accepted": {
			{"", "+OK", nil},
			{"USER alice\n", "+OK", nil}, // send adds CRLF: the line is "USER alice\n\r\n"? no: see below
		},
		"STLS without TLS": {
			{"", "+OK", nil},
			{"STLS", "-ERR STLS not available", nil},
			{"QUIT", "+OK", nil},
		},
		"APOP disabled": {
			{"", "+OK", nil},
			{"APOP alice 0123456789abcdef0123456789abcdef", "-ERR APOP not available", nil},
			{"QUIT", "+OK", nil},
		},
		"APOP arguments": {
			{"", "+OK", nil},
			{"APOP alice", "-ERR wrong number of arguments", nil},
			{"QUIT", "+OK", nil},
		},
	}
	delete(cases, "bare LF line endings accepted") // covered by TestBareLF with raw writes
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newEnv(t, nil).dial(t) // own mailbox lock per case
			run(c, steps)
		})
	}
}

// TestBareLF: clients may end lines with a bare LF.
func TestBareLF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial(t)
	c.Line()
	fmt.Fprint(c.Conn, "USER alice\nPASS secret\nSTAT\nQUIT\n")
	for _, want := range []string{"+OK send PASS", "+OK maildrop locked", "+OK 3 ", "+OK"} {
		if got := c.Line(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.Closed()
}

// TestTransactionDialog walks every TRANSACTION command with good and
// bad arguments, then QUIT applies exactly the deletions.
func TestTransactionDialog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	s1, s2, s3 := crlfSize([]byte(msg1)), crlfSize([]byte(msg2)), crlfSize([]byte(msg3))
	st := e.drop.store("alice@example.com")
	u1, u2, u3 := st.msgs[0].uid, st.msgs[1].uid, st.msgs[2].uid
	c := e.dial(t)
	login(c, "alice@example.com", "secret")
	run(c, []step{
		{"CAPA", "+OK", capaTransaction},
		{"STAT", fmt.Sprintf("+OK 3 %d", s1+s2+s3), nil},
		{"LIST", fmt.Sprintf("+OK 3 messages (%d octets)", s1+s2+s3), []string{
			fmt.Sprintf("1 %d", s1), fmt.Sprintf("2 %d", s2), fmt.Sprintf("3 %d", s3)}},
		{"LIST 2", fmt.Sprintf("+OK 2 %d", s2), nil},
		{"LIST 4", "-ERR no such message", nil},
		{"LIST 0", "-ERR no such message", nil},
		{"LIST 99999999999999999999", "-ERR no such message", nil},
		{"UIDL", "+OK", []string{"1 " + u1, "2 " + u2, "3 " + u3}},
		{"UIDL 3", "+OK 3 " + u3, nil},
		{"UIDL 4", "-ERR no such message", nil},
		{"RETR 1", fmt.Sprintf("+OK %d octets", s1), msg1Lines},
		{"RETR 2", "+OK", []string{"From: carol@example.com", "Subject: two", "", "CRLF body", "second"}},
		{"RETR 3", "+OK", []string{"Subject: three", "", "no final newline"}},
		{"RETR 4", "-ERR no such message", nil},
		{"TOP 1 0", "+OK", []string{"From: bob@example.com", "Subject: one", ""}},
		{"TOP 1 2", "+OK", []string{"From: bob@example.com", "Subject: one", "", "Hello", ".dot line"}},
		{"TOP 1 100", "+OK", msg1Lines},
		{"TOP 2 1", "+OK", []string{"From: carol@example.com", "Subject: two", "", "CRLF body"}},
		{"TOP 3 99999999999999", "+OK", []string{"Subject: three", "", "no final newline"}},
		{"TOP 9 1", "-ERR no such message", nil},
		{"NOOP", "+OK", nil},
		{"DELE 1", "+OK message 1 deleted", nil},
		{"DELE 1", "-ERR message 1 already deleted", nil},
		{"RETR 1", "-ERR message 1 already deleted", nil},
		{"LIST 1", "-ERR message 1 already deleted", nil},
		{"TOP 1 0", "-ERR message 1 already deleted", nil},
		{"UIDL 1", "-ERR message 1 already deleted", nil},
		{"STAT", fmt.Sprintf("+OK 2 %d", s2+s3), nil},
		{"LIST", "+OK 2 messages", []string{fmt.Sprintf("2 %d", s2), fmt.Sprintf("3 %d", s3)}},
		{"UIDL", "+OK", []string{"2 " + u2, "3 " + u3}},
		{"RSET", fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", s1+s2+s3), nil},
		{"STAT", "+OK 3 ", nil},
		{"DELE 3", "+OK", nil},
		{"DELE 2", "+OK", nil},
		{"QUIT", "+OK pop.example.com POP3 server signing off (1 messages left)", nil},
		{"", "<closed>", nil},
	})
	e.waitClosed(t, "alice@example.com")
	n, commits, closes, locked := e.drop.state("alice@example.com")
	if n != 1 || len(commits) != 1 || fmt.Sprint(commits[0]) != "[1 2]" || closes != 1 || locked {
		t.Fatalf("after QUIT: %d messages, commits %v, closes %d, locked %v", n, commits, closes, locked)
	}
	if st.msgs[0].uid != u1 || !st.msgs[0].seen {
		t.Fatalf("kept message %q seen=%v, want %q seen", st.msgs[0].uid, st.msgs[0].seen, u1)
	}
}

// TestTransactionBadArguments: each case is its own session (three
// mistakes close one).
func TestTransactionBadArguments(t *testing.T) {
	t.Parallel()
	cases := map[string][]step{
		"missing": {{"RETR", "-ERR wrong number of arguments for RETR", nil}, {"DELE", "-ERR wrong number", nil}},
		"extra":   {{"STAT 1", "-ERR wrong number", nil}, {"LIST 1 2", "-ERR wrong number", nil}},
		"extra2":  {{"NOOP x", "-ERR wrong number", nil}, {"TOP 1", "-ERR wrong number", nil}},
		"extra3":  {{"RSET 1", "-ERR wrong number", nil}, {"UIDL 1 2", "-ERR wrong number", nil}},
		"nonnum":  {{"RETR one", `-ERR invalid message number "one"`, nil}, {"DELE -1", "-ERR invalid message number", nil}},
		"nonnum2": {{"LIST +1", "-ERR invalid message number", nil}, {"TOP 1 x", `-ERR invalid line count "x"`, nil}},
		"nonnum3": {{"TOP 1 -1", "-ERR invalid line count", nil}, {"UIDL 0x1", "-ERR invalid message number", nil}},
		"auth cmds in transaction": {
			{"USER alice", "-ERR USER not valid in this state", nil}, {"STLS", "-ERR STLS not valid", nil}},
		"auth cmds 2": {{"PASS x", "-ERR PASS not valid", nil}, {"AUTH PLAIN", "-ERR AUTH not valid", nil}},
		"auth cmds 3": {{"APOP a b", "-ERR APOP not valid", nil}, {"RETR 1", "+OK", msg1Lines}},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := newEnv(t, nil) // own mailbox lock per case
			c := d.dial(t)
			login(c, "alice", "secret")
			run(c, steps)
			run(c, []step{{"QUIT", "+OK", nil}})
		})
	}
}

// TestRawStuffing checks the exact bytes of a RETR: CRLF endings and
// stuffed dots.
func TestRawStuffing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.drop.add("bob@example.com", ".\n..\nx\r\n.\r\n\nend")
	c := e.dial(t)
	login(c, "bob", "pass word")
	c.Send("RETR 1")
	want := "+OK 18 octets\r\n..\r\n...\r\nx\r\n..\r\n\r\nend\r\n.\r\n"
	buf := make([]byte, len(want))
	if _, err := c.R.Read(buf[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := fullRead(c, buf[1:]); err != nil {
		t.Fatal(err)
	}
	if string(buf) != want {
		t.Fatalf("got %q\nwant %q", buf, want)
	}
}

func fullRead(c *client, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.R.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
