package policyd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/internal/lookuptest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const access = `192.168.0	RELAY
Connect:10.9	REJECT
Connect:10.8	ERROR:4.3.2:"421 Not now"
spamford.com	REJECT
From:cyberspammer.com	DISCARD
Connect:10.7	DISCARD
To:friend.example	RELAY
`

// newPolicy is a real acl.Policy with a real grant store: 198.51.100.7
// logged in over POP3 at t0.
func newPolicy(t testing.TB) (*acl.Policy, *acl.Grants, *clock) {
	t.Helper()
	rules, err := acl.ParseRulesString(access)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	g, err := acl.NewGrants(acl.GrantsConfig{TTL: 15 * time.Minute, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	g.LoginSucceeded("alice@example.com", netip.MustParseAddr("198.51.100.7"))
	return acl.NewPolicy(acl.Config{LocalDomains: []string{"example.com"}, Rules: rules, Grants: g}), g, c
}

// start serves s on a loopback listener and returns its address.
func start(t testing.TB, s *Server) string {
	t.Helper()
	return lookuptest.Start(t, s)
}

type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, r := lookuptest.Dial(t, addr)
	return &client{t: t, c: c, r: r}
}

// ask sends raw (a whole request, empty line included) and returns the
// action of the answer.
func (cl *client) ask(raw string) string {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
	line, err := cl.r.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("reading answer: %v", err)
	}
	blank, err := cl.r.ReadString('\n')
	if err != nil || blank != "\n" {
		cl.t.Fatalf("answer not ended by an empty line: %q %v", blank, err)
	}
	return strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "action=")
}

// request is what Postfix 3.7 sends at RCPT (SMTPD_POLICY_README).
func request(state, client, name, rcpt string) string {
	return fmt.Sprintf(`request=smtpd_access_policy
protocol_state=%s
protocol_name=ESMTP
helo_name=client.example.net
queue_id=
sender=roamer@example.com
recipient=%s
recipient_count=0
client_address=%s
client_name=%s
reverse_client_name=%s
instance=1a2b.6770a1c0.3e8f1.0
sasl_method=
sasl_username=
sasl_sender=
size=0
ccert_subject=
ccert_issuer=
ccert_fingerprint=
encryption_protocol=
encryption_cipher=
encryption_keysize=0
etrn_domain=
stress=
server_address=127.0.0.1
server_port=2525
compatibility_level=3.6
mail_version=3.7.11

`, state, rcpt, client, name, name)
}

func TestPolicyAnswers(t *testing.T) {
	p, grants, clk := newPolicy(t)
	addr := start(t, New(Config{Decider: p}))
	cl := dial(t, addr) // one connection for all: Postfix keeps it open
	cases := []struct {
		name, req, want string
	}{
		{"granted client", request("RCPT", "198.51.100.7", "unknown", "bob@remote.example"), "OK"},
		{"RELAY network", request("RCPT", "192.168.0.20", "unknown", "bob@remote.example"), "OK"},
		{"To: RELAY domain", request("RCPT", "203.0.113.5", "unknown", "bob@Friend.Example"), "OK"},
		{"unknown client", request("RCPT", "203.0.113.5", "unknown", "bob@remote.example"), "DUNNO"},
		{"REJECT network", request("RCPT", "10.9.0.1", "unknown", "bob@remote.example"), "554 5.7.1 Access denied"},
		{"ERROR network", request("RCPT", "10.8.0.1", "unknown", "bob@remote.example"), "421 4.3.2 Not now"},
		{"REJECT host name", request("RCPT", "203.0.113.5", "mx.spamford.com", "bob@remote.example"), "554 5.7.1 Access denied"},
		{"DISCARD network", request("RCPT", "10.7.0.1", "unknown", "bob@remote.example"), "DISCARD"},
		{"CONNECT state: client only", request("CONNECT", "198.51.100.7", "unknown", ""), "DUNNO"},
		{"CONNECT state: rejected client", request("CONNECT", "10.9.0.1", "unknown", ""), "554 5.7.1 Access denied"},
		{"IPv4-mapped client", request("RCPT", "::ffff:198.51.100.7", "unknown", "bob@remote.example"), "OK"},
	}
	for _, c := range cases {
		if got := cl.ask(c.req); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	// The answer follows the grant: at expiry the same client gets DUNNO.
	clk.t = clk.t.Add(15 * time.Minute)
	if got := cl.ask(request("RCPT", "198.51.100.7", "unknown", "bob@remote.example")); got != "DUNNO" {
		t.Errorf("after expiry: got %q, want DUNNO", got)
	}
	grants.LoginSucceeded("alice@example.com", netip.MustParseAddr("198.51.100.7"))
	if got := cl.ask(request("RCPT", "198.51.100.7", "unknown", "bob@remote.example")); got != "OK" {
		t.Errorf("after a new login: got %q, want OK", got)
	}
}

// TestPolicyMalformed sends each bad request on one connection, each
// followed by a good one: every bad one gets an answer and the dialog
// stays in step.
func TestPolicyMalformed(t *testing.T) {
	p, _, _ := newPolicy(t)
	addr := start(t, New(Config{Decider: p}))
	cl := dial(t, addr)
	good := request("RCPT", "198.51.100.7", "unknown", "bob@remote.example")
	bad := map[string]string{
		"no request attribute":  "client_address=198.51.100.7\n\n",
		"other request":         "request=junk\nclient_address=1.2.3.4\n\n",
		"line without =":        "request=smtpd_access_policy\nclient_address\n\n",
		"empty name":            "request=smtpd_access_policy\n=x\n\n",
		"NUL byte":              "request=smtpd_access_policy\nclient_address=198.51.100.7\x00\n\n",
		"bad client_address":    "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b\nclient_address=999.1.1.1\n\n",
		"RCPT without rcpt":     "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.7\n\n",
		"over-long line":        "request=smtpd_access_policy\nccert_subject=" + strings.Repeat("x", 3*maxLine) + "\nclient_address=198.51.100.7\n\n",
		"too many attributes":   "request=smtpd_access_policy\n" + manyAttrs(maxAttrs+1) + "\n",
		"CRLF and empty values": "request=smtpd_access_policy\r\nclient_address=\r\n\r\n",
	}
	for name, raw := range bad {
		if got := cl.ask(raw); got != malformedAction {
			t.Errorf("%s: got %q, want %q", name, got, malformedAction)
		}
		if got := cl.ask(good); got != "OK" {
			t.Fatalf("after %s: got %q, want OK (dialog out of step)", name, got)
		}
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "a%d=v\n", i)
	}
	return b.String()
}

// TestPolicyRequestTooLong: a request past maxRequest gets an answer and
// its connection is closed; the server goes on.
func TestPolicyRequestTooLong(t *testing.T) {
	p, _, _ := newPolicy(t)
	addr := start(t, New(Config{Decider: p}))
	cl := dial(t, addr)
	go func() {
		// Never ends with an empty line: only the limit stops it.
		line := "x=" + strings.Repeat("y", 1000) + "\n"
		for range 2 * maxRequest / len(line) {
			if _, err := io.WriteString(cl.c, line); err != nil {
				return
			}
		}
	}()
	line, err := cl.r.ReadString('\n')
	if err != nil || line != "action="+malformedAction+"\n" {
		t.Fatalf("got %q %v", line, err)
	}
	if _, err := cl.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.r.ReadByte(); err == nil {
		t.Fatal("connection not closed")
	}
	if got := dial(t, addr).ask(request("RCPT", "198.51.100.7", "unknown", "b@remote.example")); got != "OK" {
		t.Fatalf("server gone after a bad client: %q", got)
	}
}

// TestPolicyConnectionLimit: past MaxConns a connection is closed at
// once; when a slot frees, connections are served again.
func TestPolicyConnectionLimit(t *testing.T) {
	p, _, _ := newPolicy(t)
	addr := start(t, New(Config{Decider: p, MaxConns: 1}))
	first := dial(t, addr)
	good := request("RCPT", "198.51.100.7", "unknown", "b@remote.example")
	if got := first.ask(good); got != "OK" {
		t.Fatal(got)
	}
	second := dial(t, addr)
	if _, err := second.r.ReadByte(); err != io.EOF {
		t.Fatalf("second connection over the limit: got %v, want EOF", err)
	}
	first.c.Close()
	// The slot frees when the server sees the close: retry until then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		cl := &client{t: t, c: c, r: bufio.NewReader(c)}
		if _, err := io.WriteString(c, good); err == nil {
			if line, err := cl.r.ReadString('\n'); err == nil {
				if line != "action=OK\n" {
					t.Fatalf("got %q", line)
				}
				c.Close()
				return
			}
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the freed slot was never reused")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPolicyIdleTimeout: an idle connection is closed after IdleTimeout.
func TestPolicyIdleTimeout(t *testing.T) {
	p, _, _ := newPolicy(t)
	addr := start(t, New(Config{Decider: p, IdleTimeout: 50 * time.Millisecond}))
	cl := dial(t, addr)
	if _, err := cl.r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: got %v, want EOF", err)
	}
}

func TestAction(t *testing.T) {
	cases := []struct {
		d    acl.Decision
		want string
	}{
		{acl.Decision{Action: acl.Relay}, "OK"},
		{acl.Decision{Action: acl.Accept}, "DUNNO"},
		{acl.Decision{Action: acl.Discard}, "DISCARD"},
		{acl.Decision{Action: acl.Reject, Code: 550, Enhanced: "5.7.1", Text: "Go\r\naway"}, "550 5.7.1 Go away"},
		{acl.Decision{Action: acl.TempFail, Code: 451, Text: "later"}, "451 later"},
	}
	for _, c := range cases {
		if got := Action(c.d); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.d, got, c.want)
		}
	}
}
