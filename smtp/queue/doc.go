// Package queue spools relayed mail under data_dir/queue and delivers it
// to a smarthost or the recipient domain's MX, with retries and RFC 3464
// bounces.
//
// # Files
//
// Each message is two files in Config.Dir: <id>.msg holds the body
// (normalised to CRLF line endings) and <id>.env holds the envelope as
// JSON: sender, per-recipient status, attempts and the next try. Files
// named free-<n> are spare files kept for reuse (see recycle.go).
//
// # At-least-once
//
// The queue never loses a message it acknowledged and duplicates one only
// where SMTP itself allows it (RFC 5321 §6.1 prefers a duplicate to a
// loss). The argument, step by step:
//
//   - Enqueue writes and fsyncs <id>.msg, then creates <id>.env in place
//     (O_EXCL), writes and fsyncs it, then fsyncs the directory once,
//     which makes both names durable, and only then returns; the SMTP
//     server answers 250 after that. A crash before the .env exists
//     leaves at most an orphan .msg, which no client was told was
//     accepted; New removes it. A crash while the .env is being written
//     leaves it torn or empty, never for a message that got its 250: it
//     fails to decode and New quarantines it. A crash after the
//     directory sync leaves a complete message, which New schedules.
//     Since the .msg was fsynced before the .env was created, a complete
//     .env always has its complete body.
//   - A delivery attempt reads the .env, talks to the peer and then
//     rewrites the .env durably with every recipient's new status before
//     the message is scheduled again. A crash between the peer's 250 and
//     that rewrite leaves the recipients marked pending, so they are sent
//     again after restart: a duplicate, never a loss.
//   - When no recipient is left pending (all sent or bounced) the .env is
//     removed first and the .msg second, and one directory fsync makes
//     both removals durable. A crash that loses both sends the message
//     again (a duplicate); one that keeps only a removed .env leaves an
//     orphan .msg, removed at the next start; the unlikely rest (the .msg
//     gone, its .env back) is quarantined at start, never sent without
//     its body.
//   - Files are recycled: a delivered message's .env and .msg are renamed
//     to free names (free-<n>, at most maxFreeFiles of at most
//     maxFreeSize) rather than removed, and a new message's files are
//     free ones renamed to its id, written over and cut to length before
//     their fsync. This changes none of the steps above: until its .env
//     exists a .msg is an orphan, whatever it holds, and the .env is
//     written only after the body's fsync; a recycled .env torn by a
//     crash holds either the new envelope, whole, or something that fails
//     to decode or names another id, and is quarantined. Only the
//     delivery attempt that finished a message recycles its files
//     (Delete removes them: an attempt may still be reading the body);
//     List, which reads envelopes at any time, skips one whose name has
//     gone when what it read does not decode. Free files are never
//     scheduled; they keep old message content until reused.
//   - Later envelope rewrites (after an attempt) stay atomic: temporary
//     file, fsync, rename, directory fsync.
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
//   - A session that ended its transaction cleanly is kept idle for the
//     next message to the same destination (up to connIdleLimit idle and
//     connReuseLimit after it was opened), which then needs only MAIL,
//     RCPT and DATA. An idle session counts against MaxPerDestination
//     (a new one is dialled only when none is idle) and gives way to new
//     connections beyond MaxConcurrent. If a reused session's MAIL gets
//     no reply or a 421, the peer had dropped it and nothing was
//     accepted on it: the message goes over a fresh connection.
//   - Only one process may run a Queue on a directory; the CLI reaches it
//     through the server's control socket.
//   - MX delivery uses opportunistic, unauthenticated STARTTLS (RFC 7435):
//     certificates are not verified and a failed handshake falls back to
//     plain text. A smarthost can require verified TLS.
package queue
