package smtp

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"
)

// Client describes the peer of one SMTP session as the Policy sees it.
type Client struct {
	// IP is the client address used for every decision: the TCP peer, or the
	// PROXY header's source when the peer is a trusted proxy.
	IP netip.Addr
	// Hostname is the name the client gave in HELO/EHLO ("" before it).
	Hostname string
	// AuthUser is the SMTP AUTH identity, "" when not authenticated.
	AuthUser string
	// TLS reports whether the session is encrypted (STARTTLS or implicit TLS).
	TLS bool
	// Listener names the kind of listener the client connected to.
	Listener ListenerKind
}

// ListenerKind names the role of a listener.
type ListenerKind string

// The three listener roles.
const (
	ListenerMX          ListenerKind = "mx"          // port 25: inbound from anyone
	ListenerSubmission  ListenerKind = "submission"  // port 587: STARTTLS, AUTH
	ListenerSubmissions ListenerKind = "submissions" // port 465: implicit TLS, AUTH
)

// Action is what a Policy decides for a connection, sender or recipient.
type Action int

// Policy actions. The zero value is ActionAccept, which never grants relay.
const (
	// ActionAccept lets the step proceed; for a recipient it means "deliver
	// locally" and is not enough to relay to a remote domain.
	ActionAccept Action = iota
	// ActionRelay lets the step proceed and permits relaying to remote domains.
	ActionRelay
	// ActionReject refuses with a permanent (5xx) reply.
	ActionReject
	// ActionTempFail refuses with a temporary (4xx) reply.
	ActionTempFail
	// ActionDiscard accepts and silently drops (the recipient, or every
	// message of the transaction or session).
	ActionDiscard
)

// String returns the action's lowercase name for logs.
func (a Action) String() string {
	switch a {
	case ActionAccept:
		return "accept"
	case ActionRelay:
		return "relay"
	case ActionReject:
		return "reject"
	case ActionTempFail:
		return "tempfail"
	case ActionDiscard:
		return "discard"
	}
	return "unknown"
}

// Verdict is a Policy decision. Code, Enhanced and Text are optional reply
// overrides for Reject and TempFail (a code of the wrong class is ignored);
// Reason goes to the log only.
type Verdict struct {
	Action   Action
	Code     int    // e.g. 550; 0: default for the action
	Enhanced string // e.g. "5.7.1"; "": default for the action
	Text     string // reply text; "": default for the action
	Reason   string // why, for the log (rule, grant, network)
	// GrantUser and GrantTime name the POP3 login that allowed relaying,
	// when that is why the verdict is ActionRelay; they appear in the
	// Received header.
	GrantUser string
	GrantTime time.Time
}

// Policy decides at connect, at MAIL and at every RCPT. It is implemented
// over the acl package by the integrator; it is asked again at every RCPT so
// a grant that expires mid-session stops relaying at the next recipient.
type Policy interface {
	CheckConnect(c Client) Verdict
	CheckFrom(c Client, from string) Verdict
	CheckRcpt(c Client, from, rcpt string) Verdict
}

// Recipients resolves a local address to the final mailbox addresses,
// aliases expanded. addr is local@domain with the local part as the client
// sent it (case preserved, RFC 5321 §2.4; fold it if lookups are
// case-insensitive) and the domain lowercase, A-label, no trailing dot. An unknown address must
// return an error for which errors.Is(err, ErrNoSuchUser) holds.
type Recipients interface {
	Resolve(ctx context.Context, addr string) ([]string, error)
}

// Deliverer durably delivers one message into local mailboxes: it returns
// nil only once the message is fsynced into every mailbox. The message has
// CRLF line endings and starts with popgate's Received header; from is the
// envelope sender ("" for the null sender), for the Return-Path that final
// delivery adds. A full disk is reported with ErrInsufficientStorage (or
// an ENOSPC/EDQUOT error), a loop with ErrMailLoop.
type Deliverer interface {
	Deliver(ctx context.Context, from string, mailboxes []string, r io.Reader) error
}

// Spooler durably queues one message for remote recipients and returns its
// queue id; nil error means the message is on disk.
type Spooler interface {
	Spool(ctx context.Context, from string, to []string, r io.Reader) (id string, err error)
}

// Authenticator checks SMTP AUTH credentials and returns the canonical user
// name. Bad credentials must satisfy errors.Is(err, ErrBadCredentials), a
// throttled client errors.Is(err, ErrAuthThrottled); any other error is an
// internal failure.
type Authenticator interface {
	Authenticate(ctx context.Context, ip netip.Addr, user, password string) (string, error)
}

// SenderOwner says whether an authenticated user may use an envelope sender:
// the address must be theirs or an alias that resolves to them. from is
// normalised like a Recipients address; the null sender is not asked.
type SenderOwner interface {
	MayUse(authUser, from string) bool
}

// Deps are the collaborators a Server needs. Authenticator and SenderOwner
// may be nil together: then no AUTH is offered.
type Deps struct {
	Policy        Policy
	Recipients    Recipients
	Deliverer     Deliverer
	Spooler       Spooler
	Authenticator Authenticator
	SenderOwner   SenderOwner
	// Storage, if set, is asked at every MAIL whether there is room.
	Storage Storage
}

// Errors the collaborators return so the server can pick the right reply.
var (
	// ErrNoSuchUser: Recipients.Resolve does not know the address (550 5.1.1).
	ErrNoSuchUser = errors.New("smtp: no such user")
	// ErrBadCredentials: Authenticator rejected the password (535 5.7.8).
	ErrBadCredentials = errors.New("smtp: bad credentials")
	// ErrAuthThrottled: Authenticator refuses to try now (454 4.7.0).
	ErrAuthThrottled = errors.New("smtp: authentication throttled")
)
