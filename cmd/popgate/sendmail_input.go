package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
)

// errMessageTooLarge: the message read from stdin exceeds the limit.
var errMessageTooLarge = errors.New("message too large")

// readSendmailMessage reads the message a program pipes to sendmail. Without
// -i a line holding only "." ends it (sendmail's default); with -i only
// the end of input does. Line ends are left as they come: bare LF is the
// norm here and the server turns it into CRLF.
func readSendmailMessage(r io.Reader, ignoreDots bool, limit int64) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var buf bytes.Buffer
	lineStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		if !ignoreDots && lineStart && isDotLine(chunk, err) {
			return buf.Bytes(), nil
		}
		buf.Write(chunk)
		if int64(buf.Len()) > limit {
			return nil, fmt.Errorf("%w: more than %d octets", errMessageTooLarge, limit)
		}
		lineStart = err == nil
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return buf.Bytes(), nil
		default:
			return nil, fmt.Errorf("read message: %w", err)
		}
	}
}

// isDotLine reports whether a whole line is a lone "." (LF, CRLF, or at
// the end of input).
func isDotLine(chunk []byte, err error) bool {
	s := string(chunk)
	return s == ".\n" || s == ".\r\n" || (s == "." && errors.Is(err, io.EOF))
}

// extractRecipients returns the addresses in the To:, Cc: and Bcc: fields
// of a message's header, for -t. Addresses may be unqualified ("root"),
// as cron writes them; the server qualifies them.
func extractRecipients(msg []byte) []string {
	var out []string
	for _, f := range headerFields(msg) {
		switch strings.ToLower(f.name) {
		case "to", "cc", "bcc":
			out = append(out, splitAddresses(f.value)...)
		}
	}
	return out
}

type headerField struct{ name, value string }

// headerFields unfolds the header section of msg (LF or CRLF lines).
func headerFields(msg []byte) []headerField {
	var fields []headerField
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				break
			}
			fields[len(fields)-1].value += " " + strings.TrimSpace(string(line))
			continue
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			break // not a header: the body starts here
		}
		fields = append(fields, headerField{name: name, value: strings.TrimSpace(value)})
	}
	return fields
}

// splitAddresses parses an address list field. RFC 5322 lists go through
// net/mail; what it refuses (bare "root", sloppy scripts) is split on
// commas outside quotes, angle brackets and comments, keeping the part in
// <> or the text without comments.
func splitAddresses(v string) []string {
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	var out []string
	for _, part := range splitOutside(v) {
		if _, rest, ok := strings.Cut(part, ":"); ok && !strings.Contains(part[:strings.IndexByte(part, ':')], "<") {
			part = rest // group "name: a, b;" or its first member
		}
		part = strings.TrimSuffix(strings.TrimSpace(part), ";")
		if i := strings.IndexByte(part, '<'); i >= 0 {
			if j := strings.IndexByte(part[i:], '>'); j > 0 {
				part = part[i+1 : i+j]
			}
		}
		part = strings.TrimSpace(stripComments(part))
		if part != "" && !strings.ContainsAny(part, " \t\r\n\"") {
			out = append(out, part)
		}
	}
	return out
}

// splitOutside splits on commas that are outside quotes, <> and ().
func splitOutside(v string) []string {
	var parts []string
	depth, angle, quoted, start := 0, false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '<' && depth == 0:
			angle = true
		case c == '>' && depth == 0:
			angle = false
		case c == ',' && depth == 0 && !angle:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	return append(parts, v[start:])
}

// stripComments removes (comments), nested or not.
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
