package pop3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// command is one entry of the dispatch table: the handler, the states it
// is valid in and its argument count. rawArg passes the rest of the line
// as one argument (PASS: RFC 1939 §7 lets a password contain spaces).
type command struct {
	fn               func(*session, []string) error
	states           state
	minArgs, maxArgs int
	rawArg           bool
}

// commands is the dispatch table (RFC 1939 §§4-7, RFC 2449, RFC 2595,
// RFC 5034). It is never modified.
var commands = map[string]command{
	"CAPA": {fn: (*session).cmdCAPA, states: stateAuthorization | stateTransaction},
	"QUIT": {fn: (*session).cmdQUIT, states: stateAuthorization | stateTransaction},
	"STLS": {fn: (*session).cmdSTLS, states: stateAuthorization},
	"USER": {fn: (*session).cmdUSER, states: stateAuthorization, minArgs: 1, maxArgs: 1, rawArg: true},
	"PASS": {fn: (*session).cmdPASS, states: stateAuthorization, minArgs: 1, maxArgs: 1, rawArg: true},
	"APOP": {fn: (*session).cmdAPOP, states: stateAuthorization, minArgs: 2, maxArgs: 2},
	"AUTH": {fn: (*session).cmdAUTH, states: stateAuthorization, maxArgs: 2},
	"STAT": {fn: (*session).cmdSTAT, states: stateTransaction},
	"LIST": {fn: (*session).cmdLIST, states: stateTransaction, maxArgs: 1},
	"UIDL": {fn: (*session).cmdUIDL, states: stateTransaction, maxArgs: 1},
	"RETR": {fn: (*session).cmdRETR, states: stateTransaction, minArgs: 1, maxArgs: 1},
	"TOP":  {fn: (*session).cmdTOP, states: stateTransaction, minArgs: 2, maxArgs: 2},
	"DELE": {fn: (*session).cmdDELE, states: stateTransaction, minArgs: 1, maxArgs: 1},
	"NOOP": {fn: (*session).cmdNOOP, states: stateTransaction},
	"RSET": {fn: (*session).cmdRSET, states: stateTransaction},
}

// parseNumber accepts a decimal number of digits only (no sign, no
// spaces), as RFC 1939 §3 arguments are.
func parseNumber(arg string) (int, bool) {
	if arg == "" || len(arg) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// message resolves a message-number argument to an index into s.msgs.
func (s *session) message(arg string) (int, error) {
	n, ok := parseNumber(arg)
	if !ok {
		if isDigits(arg) {
			return 0, &Error{Msg: "no such message"}
		}
		return 0, protoErr("invalid message number %q", truncate(arg))
	}
	if n < 1 || n > len(s.msgs) {
		return 0, &Error{Msg: "no such message"}
	}
	if s.deleted[n-1] {
		return 0, &Error{Msg: fmt.Sprintf("message %d already deleted", n)}
	}
	return n - 1, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// truncate keeps echoed client input short enough for a reply line
// (RFC 2449 §4: 512 octets).
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// totals counts the messages not marked deleted and their octets.
func (s *session) totals() (n int, octets int64) {
	for i, m := range s.msgs {
		if !s.deleted[i] {
			n++
			octets += m.Size
		}
	}
	return n, octets
}

// cmdSTAT answers the drop listing (RFC 1939 §5).
func (s *session) cmdSTAT([]string) error {
	n, octets := s.totals()
	s.writeLine(fmt.Sprintf("+OK %d %d", n, octets))
	return nil
}

// cmdLIST answers scan listings (RFC 1939 §5).
func (s *session) cmdLIST(args []string) error {
	if len(args) == 1 {
		i, err := s.message(args[0])
		if err != nil {
			return err
		}
		s.writeLine(fmt.Sprintf("+OK %d %d", i+1, s.msgs[i].Size))
		return nil
	}
	n, octets := s.totals()
	w := s.out()
	fmt.Fprintf(w, "+OK %d messages (%d octets)\r\n", n, octets)
	var b []byte
	for i, m := range s.msgs {
		if s.deleted[i] {
			continue
		}
		b = strconv.AppendInt(b[:0], int64(i+1), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, m.Size, 10)
		b = append(b, '\r', '\n')
		w.Write(b)
	}
	w.WriteString(".\r\n")
	return nil
}

// cmdUIDL answers unique-id listings (RFC 1939 §7).
func (s *session) cmdUIDL(args []string) error {
	if len(args) == 1 {
		i, err := s.message(args[0])
		if err != nil {
			return err
		}
		s.writeLine(fmt.Sprintf("+OK %d %s", i+1, s.msgs[i].UID))
		return nil
	}
	w := s.out()
	w.WriteString("+OK unique-id listing follows\r\n")
	var b []byte
	for i, m := range s.msgs {
		if s.deleted[i] {
			continue
		}
		b = strconv.AppendInt(b[:0], int64(i+1), 10)
		b = append(b, ' ')
		b = append(b, m.UID...)
		b = append(b, '\r', '\n')
		w.Write(b)
	}
	w.WriteString(".\r\n")
	return nil
}

// cmdRETR sends a whole message (RFC 1939 §5).
func (s *session) cmdRETR(args []string) error {
	i, err := s.message(args[0])
	if err != nil {
		return err
	}
	return s.send(i, -1, fmt.Sprintf("+OK %d octets", s.msgs[i].Size))
}

// cmdTOP sends the header and the first lines of the body (RFC 1939 §7).
func (s *session) cmdTOP(args []string) error {
	i, err := s.message(args[0])
	if err != nil {
		return err
	}
	lines, ok := parseNumber(args[1])
	if !ok {
		if !isDigits(args[1]) {
			return protoErr("invalid line count %q", truncate(args[1]))
		}
		lines = -1 // more lines than any message has
	}
	return s.send(i, lines, "+OK top of message follows")
}

// send opens message i and streams it. Everything that can fail cleanly
// is checked before "+OK"; after it, a failure can only close the
// connection, never append "-ERR" to a half-sent body.
func (s *session) send(i, lines int, ok string) error {
	rc, err := s.mbox.Open(i)
	if errors.Is(err, ErrMessageGone) {
		return &Error{Msg: fmt.Sprintf("message %d is no longer available", i+1)}
	}
	if err != nil {
		return fmt.Errorf("open message %d: %w", i+1, err)
	}
	defer rc.Close()
	s.writeLine(ok)
	bp := s.srv.bufs.Get().(*[]byte)
	err = streamBody(s.out(), rc, lines, *bp)
	s.srv.bufs.Put(bp)
	if err != nil {
		s.log.Error("pop3 send failed", "user", s.user, "msg", i+1, "err", err)
		return errClose
	}
	return nil
}

// cmdDELE marks a message deleted; it goes only at QUIT (RFC 1939 §5).
func (s *session) cmdDELE(args []string) error {
	i, err := s.message(args[0])
	if err != nil {
		return err
	}
	s.deleted[i] = true
	s.ndeleted++
	s.writeLine(fmt.Sprintf("+OK message %d deleted", i+1))
	return nil
}

// cmdNOOP does nothing (RFC 1939 §5).
func (s *session) cmdNOOP([]string) error {
	s.writeLine("+OK")
	return nil
}

// cmdRSET unmarks all deleted messages (RFC 1939 §5).
func (s *session) cmdRSET([]string) error {
	clear(s.deleted)
	s.ndeleted = 0
	n, octets := s.totals()
	s.writeLine(fmt.Sprintf("+OK maildrop has %d messages (%d octets)", n, octets))
	return nil
}

// cmdQUIT ends the session. From TRANSACTION it enters UPDATE and applies
// the deletions (RFC 1939 §6) - the only place they are applied.
func (s *session) cmdQUIT([]string) error {
	if s.state != stateTransaction {
		s.writeLine("+OK " + s.cfg.Hostname + " POP3 server signing off")
		return errClose
	}
	s.state = stateUpdate
	deleted := make([]int, 0, s.ndeleted)
	for i, d := range s.deleted {
		if d {
			deleted = append(deleted, i)
		}
	}
	if err := s.mbox.Commit(deleted); err != nil {
		s.log.Error("pop3 commit failed", "user", s.user, "err", err)
		s.writeLine("-ERR [" + CodeSysTemp + "] some deleted messages not removed")
		return errClose
	}
	left := len(s.msgs) - len(deleted)
	s.writeLine(fmt.Sprintf("+OK %s POP3 server signing off (%d messages left)", s.cfg.Hostname, left))
	return errClose
}

// cmdCAPA lists the capabilities available in the current state and TLS
// state (RFC 2449 §5): STLS only before TLS, USER and SASL only in
// AUTHORIZATION and only where a login would be accepted.
func (s *session) cmdCAPA([]string) error {
	var b strings.Builder
	b.WriteString("+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION popgate\r\n")
	if s.state == stateAuthorization {
		if s.cfg.TLS != nil && !s.tls {
			b.WriteString("STLS\r\n")
		}
		if s.authAllowed() {
			b.WriteString("USER\r\nSASL PLAIN LOGIN\r\n")
		}
	}
	b.WriteString(".\r\n")
	s.out().WriteString(b.String())
	return nil
}
