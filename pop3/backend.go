package pop3

import (
	"context"
	"io"
	"net/netip"
)

// Authenticator verifies a user's password. The caller's implementation
// applies the failed-login limiter and returns an error satisfying
// errors.Is(err, ErrBadCredentials) or errors.Is(err, ErrThrottled) for
// refused logins; any other error is treated as an internal failure.
type Authenticator interface {
	// Authenticate checks user and password for a client at ip and returns
	// the canonical user name that Maildrop.Open receives.
	Authenticate(ctx context.Context, ip netip.Addr, user, password string) (canonicalUser string, err error)
}

// Maildrop opens users' mailboxes.
type Maildrop interface {
	// Open locks and opens the mailbox of a canonical user. It returns an
	// error satisfying errors.Is(err, ErrMailboxInUse) when another session
	// holds the lock.
	Open(ctx context.Context, user string) (Mailbox, error)
}

// MessageInfo describes one message of a mailbox snapshot.
type MessageInfo struct {
	// UID is the unique-id listing (RFC 1939 §7): 1 to 70 characters in
	// the range 0x21 to 0x7E, stable across sessions.
	UID string
	// Size is the message size in octets as the client will receive it:
	// every LF not preceded by CR counted as CRLF, before dot-stuffing.
	Size int64
}

// Mailbox is an open, locked mailbox. The server calls List once at login
// (the snapshot used for the whole session), Commit at most once when the
// client QUITs from the TRANSACTION state, and Close exactly once.
type Mailbox interface {
	// List returns the messages present when the session started.
	List() ([]MessageInfo, error)
	// Open returns the content of message i (an index into List). The
	// content may use LF or CRLF line endings. It returns an error
	// satisfying errors.Is(err, ErrMessageGone) if the message vanished.
	Open(i int) (io.ReadCloser, error)
	// Commit deletes the messages whose indexes are given and marks the
	// rest as seen (RFC 1939 §6, UPDATE state).
	Commit(deleted []int) error
	// Close unlocks the mailbox.
	Close() error
}

// LoginObserver learns about successful logins, e.g. to grant
// POP-before-SMTP relaying to the client's address. It is called after the
// user authenticated and the mailbox was opened.
type LoginObserver interface {
	LoginSucceeded(user string, ip netip.Addr)
}

// clientAddresser is implemented by connections that know the real client
// address better than RemoteAddr, such as a PROXY-protocol listener's.
type clientAddresser interface {
	ClientAddr() netip.Addr
}
