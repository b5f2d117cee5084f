package smtp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
)

type nopDeps struct{}

func (nopDeps) CheckConnect(Client) Verdict                                { return Verdict{} }
func (nopDeps) CheckFrom(Client, string) Verdict                           { return Verdict{} }
func (nopDeps) CheckRcpt(Client, string, string) Verdict                   { return Verdict{} }
func (nopDeps) Resolve(context.Context, string) ([]string, error)          { return nil, ErrNoSuchUser }
func (nopDeps) Deliver(context.Context, string, []string, io.Reader) error { return nil }
func (nopDeps) Spool(context.Context, string, []string, io.Reader) (string, error) {
	return "", nil
}
func (nopDeps) Authenticate(context.Context, netip.Addr, string, string) (string, error) {
	return "", ErrBadCredentials
}
func (nopDeps) MayUse(string, string) bool { return false }

func TestNewServerValidates(t *testing.T) {
	t.Parallel()
	full := Deps{Policy: nopDeps{}, Recipients: nopDeps{}, Deliverer: nopDeps{}, Spooler: nopDeps{}, Authenticator: nopDeps{}, SenderOwner: nopDeps{}}
	if _, err := NewServer(Config{LocalDomains: []string{"example.com"}}, full); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	noAuth := full
	noAuth.Authenticator, noAuth.SenderOwner = nil, nil
	if _, err := NewServer(Config{}, noAuth); err != nil {
		t.Fatalf("without AUTH: %v", err)
	}
	bad := []struct {
		name string
		cfg  Config
		deps func(*Deps)
		want string
	}{
		{"policy", Config{}, func(d *Deps) { d.Policy = nil }, "Policy is required"},
		{"recipients", Config{}, func(d *Deps) { d.Recipients = nil }, "Recipients is required"},
		{"deliverer", Config{}, func(d *Deps) { d.Deliverer = nil }, "Deliverer is required"},
		{"spooler", Config{}, func(d *Deps) { d.Spooler = nil }, "Spooler is required"},
		{"auth pair", Config{}, func(d *Deps) { d.SenderOwner = nil }, "go together"},
		{"domain", Config{LocalDomains: []string{"exa mple.com"}}, nil, `local domain "exa mple.com"`},
		{"numeric domain", Config{LocalDomains: []string{"10.0.0.1"}}, nil, "local domain"},
		{"hostname", Config{Hostname: "mail example"}, nil, "bad hostname"},
	}
	for _, tc := range bad {
		d := full
		if tc.deps != nil {
			tc.deps(&d)
		}
		_, err := NewServer(tc.cfg, d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestServeSubmissionsNeedsTLS(t *testing.T) {
	t.Parallel()
	s, err := NewServer(Config{}, Deps{Policy: nopDeps{}, Recipients: nopDeps{}, Deliverer: nopDeps{}, Spooler: nopDeps{}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.ServeSubmissions(l); err == nil || !strings.Contains(err.Error(), "TLS is required") {
		t.Fatalf("ServeSubmissions without TLS: %v", err)
	}
}

func TestVerdictError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v    Verdict
		want string
	}{
		{Verdict{Action: ActionReject}, "550 5.7.1 Access denied"},
		{Verdict{Action: ActionReject, Code: 553, Enhanced: "5.7.2", Text: "No thanks"}, "553 5.7.2 No thanks"},
		{Verdict{Action: ActionReject, Code: 451, Enhanced: "4.7.1"}, "550 5.7.1 Access denied"}, // wrong class ignored
		{Verdict{Action: ActionTempFail}, "451 4.7.1 Try again later"},
		{Verdict{Action: ActionTempFail, Code: 421, Enhanced: "4.3.2", Text: "busy\r\n250 ok"}, "421 4.3.2 busy  250 ok"},
		{Verdict{Action: ActionReject, Enhanced: "5.x.1"}, "550 5.7.1 Access denied"},
	}
	for _, tc := range cases {
		e := verdictError(tc.v, 550, "5.7.1", "Access denied")
		got := fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
		if got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.v, got, tc.want)
		}
	}
}
