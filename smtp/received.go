package smtp

import (
	"fmt"
	"strings"
	"time"
)

// received builds popgate's Received header (RFC 5321 §4.4, RFC 5322
// §3.6.7) with CRLF line endings:
//
//	Received: from HELO ([IP])
//		(relay granted by POP3 login of USER at TIME)
//		by HOSTNAME (popgate) with ESMTPSA id ID
//		for <RCPT>; DATE
//
// No DNS lookups: the client is named by its HELO and IP only. The grant
// comment appears when relaying was allowed by a POP-before-SMTP grant.
// "for" names the recipient only when there is exactly one (privacy of
// the other recipients). The protocol keyword follows RFC 3848: ESMTP plus
// S for TLS and A for SMTP AUTH (go-smtp does not tell HELO from EHLO, so
// ESMTP is used for both).
func (s *session) received(id string, tx transaction, authUser string) string {
	var b strings.Builder
	ip := s.tc.ip
	lit := "[" + ip.String() + "]"
	if ip.Is6() {
		lit = "[IPv6:" + ip.String() + "]"
	}
	fmt.Fprintf(&b, "Received: from %s (%s)\r\n", headerToken(tx.helo), lit)
	if tx.grantUser != "" {
		fmt.Fprintf(&b, "\t(relay granted by POP3 login of %s at %s)\r\n",
			headerToken(tx.grantUser), tx.grantTime.UTC().Format(time.RFC3339))
	}
	proto := "ESMTP"
	if s.tls {
		proto += "S"
	}
	if authUser != "" {
		proto += "A"
	}
	fmt.Fprintf(&b, "\tby %s (popgate) with %s id %s\r\n", s.srv.cfg.Hostname, proto, id)
	if len(tx.rcpts) == 1 {
		fmt.Fprintf(&b, "\tfor <%s>", headerToken(tx.rcpts[0]))
	}
	fmt.Fprintf(&b, "; %s\r\n", s.srv.cfg.Now().Format(time.RFC1123Z))
	return b.String()
}

// headerToken makes client-supplied text safe inside a header: printable
// ASCII without comment or quoting specials, at most 255 octets.
func headerToken(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > 255 {
		s = s[:255]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '\\' || c == '"' || c == ';' {
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}
