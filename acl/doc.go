// Package acl decides who may relay: sendmail access rules, POP-before-SMTP grants and their access.db mirrors.
//
// Grants live in a TTL cache in memory (Grants), which is what every RCPT
// check reads. With relay.grants_url, Shared makes that cache a replica of
// the grants of every instance, kept in Redis or Valkey (one key per IP,
// expiring with the grant) and followed by pub/sub; the store behind it is
// the small sharedBackend interface (put, del, load, subscribe).
package acl
