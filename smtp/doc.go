// Package smtp implements popgate's SMTP server: inbound MX and submission, local delivery and relay decisions.
//
// It runs github.com/emersion/go-smtp behind three listener roles (MX,
// submission with STARTTLS, submissions with implicit TLS) and declares the
// small interfaces it needs (Policy, Recipients, Deliverer, Spooler,
// Authenticator, SenderOwner, Storage); cmd/popgate adapts the acl, auth, maildir
// and queue packages to them.
//
// Decisions worth knowing:
//
//   - Relay: a recipient outside Config.LocalDomains is accepted only when
//     the Policy's RCPT verdict is ActionRelay or the session has done SMTP
//     AUTH; otherwise 554 5.7.1 Relaying denied and the log event
//     "smtp relay denied" (ip, from, rcpt, reason). The Policy is asked at
//     every RCPT, so an expiring POP3 grant stops relaying mid-session.
//   - Routing tricks are refused before the Policy sees them (ParseAddress):
//     '%', '!' and quoted '@' in local parts (553 5.7.1), address literals
//     as recipients (553 5.7.1), numeric "domains"; source routes are
//     stripped and the final address is judged. Domains are compared in
//     lowercase A-label form without a trailing dot.
//   - The wire (wire.go, under go-smtp through the WrapText hook of the
//     go-smtp copy in third_party/) checks every command line before
//     go-smtp sees it: over Config.MaxLineLength 500 5.5.6, bare CR, bare
//     LF, NUL or an unknown verb 500 5.5.2; the line is dropped and the
//     session goes on. Message text has no line limit of its own.
//   - Message content: text lines of any length are kept byte for byte;
//     a bare CR or LF is refused (550 5.5.2) unless Config.BareNewline is
//     BareNewlineNormalize and the client is trusted or authenticated;
//     the end of DATA is CRLF.CRLF only; NUL refused (554 5.6.0), size
//     capped (552 5.3.4). The message is buffered (memory up to
//     Config.MemoryBufferBytes, then a temporary file), a Received header is
//     prepended, and it goes once to the Deliverer and once to the Spooler;
//     250 only after both returned nil. A second MAIL inside a transaction
//     is 503 5.5.1.
//   - Errors: internal failures become 451 4.3.0 with the cause only in
//     the log; AUTH failures are 535 5.7.8, throttling and internal AUTH
//     failures 454 4.7.0 (RFC 4954 §6). After Config.MaxErrors failed
//     commands the session gets 421 4.7.0 and is closed. go-smtp also
//     closes after its own fixed threshold of unknown or malformed commands.
//   - A full mail filesystem is 452 4.3.1 (RFC 3463), never a 5xx: at MAIL
//     when Storage reports less room than its reserve plus the SIZE
//     parameter, and after DATA when writing the message, a local copy or
//     the queue file fails with ENOSPC or EDQUOT. Both are asked afresh
//     every time, so mail is accepted again as soon as space returns. A
//     Deliverer reporting a Delivered-To loop gives 554 5.4.6.
//   - Authenticated senders are checked by Config.SenderCheck (553 5.7.1):
//     the user's own addresses (default), any local address, or any. The
//     null sender is always allowed.
//   - AUTH (PLAIN, LOGIN) is offered on the submission listeners only, and
//     there only over TLS, from loopback, or with AllowPlaintextAuth.
//   - PROXY v1/v2 headers are required from Config.ProxyNetworks and never
//     parsed from anyone else (a header from an untrusted peer closes the
//     connection); the PROXY source is then the client IP for every limit,
//     policy decision and Received header.
package smtp
