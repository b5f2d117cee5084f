// Package policyd is a Postfix policy delegation server
// (check_policy_service, SMTPD_POLICY_README): it answers a Postfix
// smtpd's relay question from popgate's POP3 grants and access rules, so
// a Postfix next to popgate needs no map file at all.
package policyd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/internal/connsrv"
)

// Defaults for Config's zero values.
const (
	// DefaultMaxConns matches Postfix's default process limit: one
	// connection per smtpd process.
	DefaultMaxConns = 100
	// DefaultIdleTimeout outlasts Postfix's smtpd_policy_service_max_idle
	// (300 s), after which the client closes an idle connection itself.
	DefaultIdleTimeout = 330 * time.Second
	// DefaultRequestTimeout bounds one request once its first line came,
	// and one answer's write; Postfix waits smtpd_policy_service_timeout
	// (100 s) for an answer.
	DefaultRequestTimeout = 10 * time.Second
)

// malformedAction is the answer to a request that cannot be judged: it
// never permits anything, and it defers rather than refuses what a later
// restriction would have permitted (Postfix's own default action for a
// failed policy service is "451 4.3.5 Server configuration problem").
const malformedAction = "DEFER_IF_PERMIT 4.3.5 Policy request malformed"

// Decider is the relay decision the server needs: acl.Policy's
// CheckRelayClient, through whatever swaps the policy on reload.
type Decider interface {
	CheckRelayClient(acl.Request) acl.Decision
}

// Config configures a Server.
type Config struct {
	Decider        Decider
	Logger         *slog.Logger  // nil: discard
	MaxConns       int           // 0: DefaultMaxConns
	IdleTimeout    time.Duration // 0: DefaultIdleTimeout
	RequestTimeout time.Duration // 0: DefaultRequestTimeout
}

// Server answers policy delegation requests.
type Server struct {
	cfg  Config
	srv  connsrv.Server
	next atomic.Uint64 // connection ids for logs
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = connsrv.ErrServerClosed

// New builds a Server; Serve runs it on a listener.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	s := &Server{cfg: cfg}
	s.srv = connsrv.Server{Name: "policy", MaxConns: cfg.MaxConns, Logger: cfg.Logger, Handle: s.handle}
	return s
}

// Serve answers connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Close stops every listener and connection.
func (s *Server) Close() error { return s.srv.Close() }

// handle runs one connection: Postfix keeps it open for many requests.
func (s *Server) handle(c net.Conn) {
	log := s.cfg.Logger.With("proto", "policy", "remote", c.RemoteAddr().String(), "conn", s.next.Add(1))
	r := bufio.NewReaderSize(c, maxLine)
	w := bufio.NewWriter(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		attrs, err := readRequest(r, func() { _ = c.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout)) })
		var action string
		var bad *errMalformed
		switch {
		case errors.As(err, &bad):
			log.Warn("policy request malformed", "err", bad.msg)
			action = malformedAction
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			log.Warn("policy connection closed", "err", err)
			if errors.Is(err, errTooLong) {
				s.answer(c, w, malformedAction)
			}
			return
		default:
			action, err = s.decide(attrs, log)
			if err != nil {
				log.Warn("policy request malformed", "err", err)
				action = malformedAction
			}
		}
		if err := s.answer(c, w, action); err != nil {
			log.Warn("policy connection closed", "err", err)
			return
		}
	}
}

func (s *Server) answer(c net.Conn, w *bufio.Writer, action string) error {
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
	w.WriteString("action=")
	w.WriteString(action)
	w.WriteString("\n\n")
	return w.Flush()
}

// decide turns one request into an action.
func (s *Server) decide(attrs map[string]string, log *slog.Logger) (string, error) {
	if attrs["request"] != "smtpd_access_policy" {
		return "", fmt.Errorf("request=%q, want smtpd_access_policy", clip(attrs["request"]))
	}
	req, err := toRequest(attrs)
	if err != nil {
		return "", err
	}
	d := s.cfg.Decider.CheckRelayClient(req)
	action := Action(d)
	log.Debug("policy answer", "state", attrs["protocol_state"], "client", req.IP.String(), "rcpt", req.To, "action", action, "reason", d.Reason)
	return action, nil
}

// toRequest reads the attributes the decision needs. The recipient counts
// only at RCPT; at any other state only the client is judged.
// client_name is Postfix's verified name ("unknown" if none), never the
// unverified reverse_client_name.
func toRequest(attrs map[string]string) (acl.Request, error) {
	ip, err := netip.ParseAddr(attrs["client_address"])
	if err != nil {
		return acl.Request{}, fmt.Errorf("client_address=%q is no IP address", clip(attrs["client_address"]))
	}
	req := acl.Request{IP: ip.Unmap()}
	if name := attrs["client_name"]; name != "unknown" {
		req.Hostname = strings.ToLower(name)
	}
	if strings.EqualFold(attrs["protocol_state"], "RCPT") {
		to := attrs["recipient"]
		if to == "" {
			return acl.Request{}, errors.New("RCPT request without recipient")
		}
		req.To = normalise(to)
		req.From = normalise(attrs["sender"])
	}
	return req, nil
}

// normalise lowercases an address's domain, as acl.Request wants it.
func normalise(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	return addr[:at+1] + strings.ToLower(addr[at+1:])
}

// Action is the policy protocol's answer for a decision: OK for an
// allowed relay, DUNNO for no objection (Postfix goes on with its next
// restriction), "NNN X.Y.Z text" for a refusal by a REJECT or ERROR rule,
// DISCARD for a DISCARD rule.
func Action(d acl.Decision) string {
	switch d.Action {
	case acl.Relay:
		return "OK"
	case acl.Reject, acl.TempFail:
		text := strings.Join(strings.Fields(d.Text), " ") // one line, always
		if d.Enhanced != "" {
			text = d.Enhanced + " " + text
		}
		return strings.TrimSpace(fmt.Sprintf("%d %s", d.Code, text))
	case acl.Discard:
		return "DISCARD"
	default:
		return "DUNNO"
	}
}

// clip shortens a value quoted in a log line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
