package pop3

import (
	"errors"
	"fmt"
)

// Response codes from RFC 2449 §8 and RFC 3206, sent in square brackets
// after "-ERR" so that clients can tell why a command failed.
const (
	// CodeInUse says the maildrop is locked by another session (RFC 2449 §8.1.1).
	CodeInUse = "IN-USE"
	// CodeLoginDelay says the user logged in too recently (RFC 2449 §8.1.2).
	// popgate does not send it: a throttled login gets the same reply as a
	// bad password so that the reply never tells whether the user exists.
	CodeLoginDelay = "LOGIN-DELAY"
	// CodeSysTemp says a temporary system problem occurred (RFC 3206 §4).
	CodeSysTemp = "SYS/TEMP"
	// CodeSysPerm says a permanent system problem occurred (RFC 3206 §4).
	CodeSysPerm = "SYS/PERM"
	// CodeAuth says the credentials (or the way they were sent) were refused (RFC 3206 §5).
	CodeAuth = "AUTH"
)

// Sentinel errors that the caller's implementations return (possibly
// wrapped) so that the server can pick the right reply.
var (
	// ErrBadCredentials is returned by an Authenticator when the user is
	// unknown or the password is wrong; the two cases must not be told apart.
	ErrBadCredentials = errors.New("pop3: bad credentials")
	// ErrThrottled is returned by an Authenticator when the failed-login
	// limiter refuses the attempt.
	ErrThrottled = errors.New("pop3: login throttled")
	// ErrMailboxInUse is returned by Maildrop.Open when another session
	// holds the lock.
	ErrMailboxInUse = errors.New("pop3: mailbox in use")
	// ErrMessageGone is returned by Mailbox.Open when the message vanished
	// after the snapshot was taken.
	ErrMessageGone = errors.New("pop3: message gone")
	// ErrServerClosed is returned by Serve and ServeTLS after Shutdown.
	ErrServerClosed = errors.New("pop3: server closed")
)

// Error is a reply the client may see: "-ERR [Code] Msg", or "-ERR Msg"
// when Code is empty. Any other error reaching the protocol edge is logged
// and the client sees a generic "-ERR [SYS/TEMP]" reply.
type Error struct {
	// Code is an RFC 2449/3206 response code such as CodeInUse, or empty.
	Code string
	// Msg is the human-readable text after the code.
	Msg string

	// protocol marks errors caused by the client's input (unknown command,
	// wrong state, bad arguments): maxProtocolErrors of them close the
	// session.
	protocol bool
	// login marks a refused login: maxFailedLogins of them close the
	// session, whatever the protocol error count.
	login bool
}

// Error returns the reply text without the "-ERR " prefix.
func (e *Error) Error() string {
	if e.Code == "" {
		return e.Msg
	}
	return "[" + e.Code + "] " + e.Msg
}

// protoErr is a client mistake that counts towards maxProtocolErrors.
func protoErr(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), protocol: true}
}

// errInternal is the one reply every unexpected error becomes (RFC 3206 §4):
// the cause goes to the log, never to the client.
var errInternal = &Error{Code: CodeSysTemp, Msg: "internal server error, try again later"}

// errAuthFailed is the single reply to every refused login, whether the
// user exists, the password is wrong or the limiter throttled the attempt
// (RFC 3206 §5: [AUTH]), so that the reply is never an oracle.
var errAuthFailed = &Error{Code: CodeAuth, Msg: "authentication failed", login: true}

// errClose asks the session loop to close the connection at once, without
// a further reply: used after "+OK" was sent and the rest cannot follow.
var errClose = errors.New("pop3: close connection")
