// Package maildir stores and reads mail in maildir format on an afero filesystem.
//
// Mailboxes live at <root>/<domain>/<local>/{cur,new,tmp}. The SMTP side
// calls Store.Deliver, which writes a message once (LF line endings, the
// maildir convention), fsyncs it, and hard-links it into new/ of every local
// recipient under a Dovecot-style name "<unix>.M<usec>P<pid>Q<seq>.<host>,S=<size>,W=<crlf size>".
// Final delivery from SMTP uses Store.DeliverMail instead: each mailbox
// gets its own copy starting with "Return-Path: <sender>" and
// "Delivered-To: <mailbox>" (RFC 5321 §4.4), and a message that already
// carries Delivered-To for one of its mailboxes is refused (ErrMailLoop).
// Either way a failure, a full disk included, leaves nothing in any new/.
// The POP3 side opens a Mailbox, locks it for the session (in-process and
// with a renewed, expiring lease in <maildir>/popgate.lease that works on
// a volume shared by several instances), lists new/ and cur/ in delivery
// order, streams messages, marks them seen (new/ -> cur/, ":2,S") and
// deletes them at QUIT.
//
// Files left by other programs (Postfix virtual(8), Dovecot) are read as
// they are. Their POP3 sizes (CRLF line endings) are computed once and
// kept in <maildir>/popgate-sizes, so a large mailbox is read in full only
// on its first listing.
package maildir
