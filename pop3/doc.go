// Package pop3 implements a POP3 server (RFC 1939, RFC 2449, RFC 2595, RFC 5034) over mailboxes provided by the caller.
//
// The caller supplies an Authenticator (password check and failed-login
// limiter), a Maildrop (locking mailbox access) and optionally a
// LoginObserver (POP-before-SMTP grants); the package imports none of
// popgate's other packages.
//
// Decisions where the standards leave a choice:
//
//   - Plaintext logins. Before TLS, USER, PASS, APOP and AUTH are refused
//     with "-ERR [AUTH] ..." unless Config.AllowPlaintextAuth is set or
//     Config.IsLocal reports the client as local (default: loopback).
//     In that state CAPA omits USER and SASL and lists STLS, so clients
//     following RFC 2595 §4 and RFC 2449 §6 upgrade before they log in.
//     After STLS or on an implicit-TLS listener, CAPA lists USER and
//     SASL PLAIN LOGIN and no longer lists STLS.
//   - Refused logins. Bad credentials, unknown users and throttled
//     attempts all get the same "-ERR [AUTH] authentication failed", so
//     the reply never tells whether a user exists or whether the limiter
//     engaged; the log line "pop3 login failed" carries the reason.
//     [LOGIN-DELAY] is therefore never sent. Internal failures get
//     "-ERR [SYS/TEMP]" and are logged.
//   - APOP is off unless Config.EnableAPOP and Config.PlainPassword are
//     set; it then works only for users whose stored password is
//     plaintext. Every APOP attempt goes through the Authenticator so the
//     limiter counts it.
//   - Sizes are octets as sent: every LF not preceded by CR counts as
//     CRLF (Mailbox implementations must compute MessageInfo.Size that
//     way); bodies are streamed, converted and dot-stuffed on the fly.
//   - Deletions are applied only by QUIT from the TRANSACTION state
//     (RFC 1939 §6). A dropped connection, an idle or lifetime timeout,
//     too many errors and Shutdown all close the mailbox untouched.
//   - Client mistakes (unknown command, wrong state, bad arguments,
//     over-long line, NUL) get "-ERR" and the session goes on, since
//     real clients probe (LAST, XTND); the 20th closes it, as in
//     Dovecot. Refused logins have their own limit: the third closes.
//     An HTTP request line as the first command closes at once.
package pop3
