// Package queue spools relayed mail under data_dir/queue and delivers it
// to a smarthost or the recipient domain's MX, with retries and RFC 3464
// bounces.
//
// # Files
//
// A new message is one file in Config.Dir, <id>.msg: the body (normalised
// to CRLF line endings), then the initial envelope as JSON (sender,
// recipients, size and CRC-32C of the body) and a trailer giving the
// JSON's length and checksum (see spoolmeta.go). After a delivery attempt
// that leaves recipients to try, <id>.env holds the envelope as JSON
// (per-recipient status, attempts, next try) and overrides the one in the
// .msg. Files named free-<n> are spare files kept for reuse (see
// recycle.go).
//
// # At-least-once
//
// The queue never loses a message it acknowledged and duplicates one only
// where SMTP itself allows it (RFC 5321 §6.1 prefers a duplicate to a
// loss). The argument, step by step:
//
//   - Enqueue writes <id>.msg whole (body, envelope, trailer), cuts it
//     to length, fsyncs it once, then fsyncs the directory (a sync shared
//     with concurrent writers), which makes the name durable, and only
//     then returns; the SMTP server answers 250 after that. A .msg is a
//     queued message only if it checks out whole: the trailer's magic,
//     the envelope's checksum, the envelope's id equal to the file name's,
//     the body's length equal to the envelope's size, and the body's
//     CRC-32C. A crash before the fsync completes can leave the file torn
//     anywhere (any blocks written or not), and no client was told it was
//     accepted: it fails one of the checks and New removes it as an orphan
//     (a .msg that fails them next to a .env was acknowledged: it is
//     quarantined, unless it is a bare body exactly the .env's size long,
//     spooled by an older version, which is scheduled). A crash after the
//     directory sync leaves a complete message, which New schedules.
//   - A delivery attempt reads the envelope (the .env, or while there is
//     none the .msg's), talks to the peer and then writes the .env durably with every recipient's new status before
//     the message is scheduled again. A crash between the peer's 250 and
//     that rewrite leaves the recipients marked pending, so they are sent
//     again after restart: a duplicate, never a loss.
//   - When no recipient is left pending (all sent or bounced) the .env
//     (if any) is removed first and the .msg second, and one directory
//     fsync makes both removals durable. A crash that loses both, or
//     keeps only the .env's removal, sends the message again from the
//     last envelope that survived (a duplicate); the unlikely rest (the
//     .msg gone, its .env back) is quarantined at start, never sent
//     without its body.
//   - Files are recycled: a delivered message's .env and .msg are renamed
//     to free names (free-<n>, at most maxFreeFiles of at most
//     maxFreeSize) rather than removed, and a new message's .msg is a free
//     file renamed to its id, written over and cut to length before its
//     fsync. This changes none of the steps above: a recycled file torn by
//     a crash holds either the new message, whole and checking out, or
//     old content whose envelope names another id or whose lengths or
//     checksums do not match, and is removed as an orphan. Only the
//     delivery attempt that finished a message recycles its files
//     (Delete removes them: an attempt may still be reading the body);
//     List, which reads envelopes at any time, skips one whose file has
//     gone when what it read does not decode. Free files are never
//     scheduled; they keep old message content until reused.
//   - Envelope writes after an attempt are atomic: temporary file, fsync,
//     rename, directory fsync; the .msg is never written again.
//   - Bounces are injected through Bouncer before the recipients are
//     marked bounced, so a crash in between sends a second DSN rather
//     than none.
//
// # Memory
//
// Only a schedule (id and next try) is held in memory; envelopes are read
// from disk when due or listed, and bodies are always streamed from disk,
// so a queue larger than memory works. New reads every body once, to
// check its checksum.
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
