package pickup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSocketDeliversLocalAndRemote(t *testing.T) {
	s, k := newTestServer(t, nil)
	path := serveSocket(t, s)
	id, err := send(t, path, Request{Rcpts: []string{"alice", "Bob@Remote.Example", "postmaster@example.com"}},
		"Subject: hi\nTo: alice\n\nline one\n.\nline three\n")
	if err != nil {
		t.Fatal(err)
	}
	ds, sp := k.deliveries(), k.spools()
	if len(ds) != 1 || len(sp) != 1 {
		t.Fatalf("delivered %d, spooled %d; want 1 and 1", len(ds), len(sp))
	}
	if got := strings.Join(ds[0].boxes, ","); got != "alice@example.com,root@example.com" {
		t.Errorf("mailboxes = %s", got)
	}
	if sp[0].from != fmt.Sprintf("user%d@example.com", os.Getuid()) && !(os.Getuid() == 0 && sp[0].from == "root@example.com") {
		t.Errorf("envelope sender = %q", sp[0].from)
	}
	if strings.Join(sp[0].to, ",") != "Bob@remote.example" {
		t.Errorf("remote rcpts = %v", sp[0].to)
	}
	msg := ds[0].msg
	wantRcvd := fmt.Sprintf("Received: by mx.example.com (popgate, from userid %d ", os.Getuid())
	if !strings.HasPrefix(msg, wantRcvd) || !strings.Contains(msg, "via socket)\r\n\tid "+id+"; ") {
		t.Errorf("Received header wrong:\n%s", msg)
	}
	// Bare LF became CRLF; the lone "." stays (the client decides about
	// dots); what the header lacked was added.
	for _, want := range []string{"\r\nSubject: hi\r\nTo: alice\r\nFrom: <", "\r\nDate: Mon, 07 Dec 2026 12:00:00 +0000\r\n",
		"\r\nMessage-ID: <" + id + "@mx.example.com>\r\n", "\r\n\r\nline one\r\n.\r\nline three\r\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if ds[0].msg != sp[0].msg {
		t.Error("the local and the queued copy differ")
	}
}

func TestSocketBadInputThenGoodMessage(t *testing.T) {
	s, k := newTestServer(t, nil)
	path := serveSocket(t, s)
	tests := []struct {
		name string
		req  Request
		msg  string
		code int
	}{
		{"unknown local user", Request{Rcpts: []string{"ghost"}}, "x\n", ExNoUser},
		{"routing trick", Request{Rcpts: []string{"bob%remote.example@example.com"}}, "x\n", ExDataErr},
		{"address literal", Request{Rcpts: []string{"bob@[192.0.2.1]"}}, "x\n", ExDataErr},
		{"bad sender", Request{From: ptr("a b@c"), Rcpts: []string{"alice"}}, "x\n", ExDataErr},
		{"too many recipients", Request{Rcpts: []string{"a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example", "f@x.example"}}, "x\n", ExDataErr},
		{"too large", Request{Rcpts: []string{"alice"}}, strings.Repeat("x", 4097), ExDataErr},
		// Refused before the body is read: the caller's write fails, and
		// it still reads why.
		{"far too large", Request{Rcpts: []string{"alice"}}, strings.Repeat("x", 8<<20), ExDataErr},
		{"NUL octet", Request{Rcpts: []string{"alice"}}, "a\x00b\n", ExDataErr},
	}
	for _, tt := range tests {
		_, err := send(t, path, tt.req, tt.msg)
		if codeOf(err) != tt.code {
			t.Errorf("%s: err = %v (code %d), want code %d", tt.name, err, codeOf(err), tt.code)
		}
	}
	raw := []struct {
		name string
		raw  string
		code int
	}{
		{"garbage", "HELO there\n", ExProtocol},
		{"no request line", "", ExProtocol},
		{"unknown field", `{"rcpts":["alice"],"size":1,"uid":0}` + "\nx", ExProtocol},
		{"over-long line", strings.Repeat("x", MaxHeaderLine+10), ExProtocol},
		{"message shorter than its size", `{"rcpts":["alice"],"size":100}` + "\nshort", ExDataErr},
	}
	for _, tt := range raw {
		r := rawExchange(t, path, []byte(tt.raw))
		if r.Code != tt.code || r.ID != "" {
			t.Errorf("%s: reply %+v, want code %d", tt.name, r, tt.code)
		}
	}
	if n := len(k.deliveries()) + len(k.spools()); n != 0 {
		t.Fatalf("%d refused messages were delivered", n)
	}
	if _, err := send(t, path, Request{Rcpts: []string{"alice"}}, "still works\n"); err != nil {
		t.Fatalf("server broken after bad input: %v", err)
	}
}

func TestSocketDeliveryFailureIsTemporary(t *testing.T) {
	s, k := newTestServer(t, nil)
	path := serveSocket(t, s)
	k.setFail(errors.New("disk full"))
	_, err := send(t, path, Request{Rcpts: []string{"alice"}}, "x\n")
	if codeOf(err) != ExTempFail {
		t.Fatalf("err = %v, want EX_TEMPFAIL", err)
	}
	if strings.Contains(err.Error(), "disk full") {
		t.Errorf("internal error shown to the caller: %v", err)
	}
}

func TestSendNotRunning(t *testing.T) {
	_, err := send(t, shortDir(t)+"/none.sock", Request{Rcpts: []string{"a"}}, "x")
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
}

func TestSubmitSenderTrust(t *testing.T) {
	s, k := newTestServer(t, func(c *Config) { c.TrustedUsers = []string{"user1001"} })
	const warn = "X-Authentication-Warning: mx.example.com: user4242 set sender to "
	tests := []struct {
		name     string
		uid      uint32
		from     *string
		wantFrom string
		warns    bool
	}{
		{"default sender", 4242, nil, "user4242@example.com", false},
		{"own address with -f", 4242, ptr("user4242"), "user4242@example.com", false},
		{"untrusted -f", 4242, ptr("boss@example.com"), "boss@example.com", true},
		{"untrusted null sender", 4242, ptr(""), "", true},
		{"trusted user", 1001, ptr("boss@example.com"), "boss@example.com", false},
		{"root", 0, ptr("boss@example.com"), "boss@example.com", false},
	}
	for i, tt := range tests {
		msg := "Subject: s\n\nb\n"
		_, err := s.Submit(context.Background(), Cred{UID: tt.uid, Via: "socket"},
			Request{From: tt.from, Rcpts: []string{"x@remote.example"}, Size: int64(len(msg))}, strings.NewReader(msg))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got := k.spools()[i]
		if got.from != tt.wantFrom {
			t.Errorf("%s: envelope sender %q, want %q", tt.name, got.from, tt.wantFrom)
		}
		if strings.Contains(got.msg, warn) != tt.warns {
			t.Errorf("%s: warning present = %v, want %v:\n%s", tt.name, !tt.warns, tt.warns, got.msg)
		}
		if want := fmt.Sprintf("from userid %d ", tt.uid); !strings.Contains(got.msg, want) {
			t.Errorf("%s: Received lacks %q", tt.name, want)
		}
	}
}

func TestSocketConnectionLimit(t *testing.T) {
	s, k := newTestServer(t, func(c *Config) { c.MaxConns = 1 })
	path := serveSocket(t, s)
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = send(t, path, Request{Rcpts: []string{"alice"}}, "x\n")
	if codeOf(err) != ExTempFail || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("second connection: err = %v, want EX_TEMPFAIL", err)
	}
	idle.Close()
	// The slot comes back once the idle caller is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = send(t, path, Request{Rcpts: []string{"alice"}}, "x\n")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || len(k.deliveries()) != 1 {
		t.Fatalf("after the idle caller left: %v", err)
	}
}
