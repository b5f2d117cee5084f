// Package queue spools relayed mail under data_dir/queue and delivers it
// to a smarthost or the recipient domain's MX, with retries and RFC 3464
// bounces.
//
// # Files
//
// Each message is two files in Config.Dir: <id>.msg holds the body
// (normalised to CRLF line endings) and <id>.env holds the envelope as
// JSON: sender, per-recipient status, attempts and the next try.
//
// # At-least-once
//
// The queue never loses a message it acknowledged and duplicates one only
// where SMTP itself allows it (RFC 5321 §6.1 prefers a duplicate to a
// loss). The argument, step by step:
//
//   - Enqueue writes and fsyncs <id>.msg, then writes <id>.env durably
//     (temp file, fsync, rename, fsync of the directory, which also makes
//     the .msg name durable), and only then returns; the SMTP server
//     answers 250 after that. A crash before the .env
//     rename leaves at most an orphan .msg, which no client was told was
//     accepted; New removes it. A crash after it leaves a complete
//     message, which New schedules.
//   - A delivery attempt reads the .env, talks to the peer and then
//     rewrites the .env durably with every recipient's new status before
//     the message is scheduled again. A crash between the peer's 250 and
//     that rewrite leaves the recipients marked pending, so they are sent
//     again after restart: a duplicate, never a loss.
//   - When no recipient is left pending (all sent or bounced) the .env is
//     removed first and the .msg second. A crash between the two leaves
//     an orphan .msg, removed at the next start; never an .env without its
//     body.
//   - Bounces are injected through Bouncer before the recipients are
//     marked bounced, so a crash in between sends a second DSN rather
//     than none.
//
// # Memory
//
// Only a schedule (id and next try) is held in memory; envelopes are read
// from disk when due or listed, and bodies are always streamed from disk,
// so a queue larger than memory works.
//
// # Choices
//
//   - 8-bit content to a peer without 8BITMIME is sent unchanged, as most
//     MTAs do (downgrading to quoted-printable would break signatures).
//   - SMTPUTF8 is requested when the envelope (sender or a recipient) is
//     not ASCII; a peer that does not offer it makes those recipients
//     bounce with 5.6.7 (RFC 6531 §3.2, RFC 6533).
//   - A peer whose SIZE is smaller than the message makes its recipients
//     bounce with 5.3.4 (RFC 1870 §6).
//   - Destinations of one message are served one after another on one
//     connection each, so MaxConcurrent bounds connections as well as
//     messages in flight; a message waiting for a busy destination
//     (MaxPerDestination) holds its slot meanwhile.
//   - Only one process may run a Queue on a directory; the CLI reaches it
//     through the server's control socket.
//   - MX delivery uses opportunistic, unauthenticated STARTTLS (RFC 7435):
//     certificates are not verified and a failed handshake falls back to
//     plain text. A smarthost can require verified TLS.
package queue
