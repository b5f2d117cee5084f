// Package pop3 implements a POP3 server (RFC 1939, RFC 2449, RFC 2595, RFC 5034) over mailboxes provided by the caller.
package pop3
