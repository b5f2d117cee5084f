package pickup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"
	"time"
)

// maxHeaderBytes bounds the header section the server reads to add what a
// local message lacks; a longer header is refused (Postfix's
// header_size_limit is 100 KiB).
const maxHeaderBytes = 1 << 20

// memoryBufferBytes: messages up to this size are buffered in memory,
// larger ones in a temporary file.
const memoryBufferBytes = 1 << 20

// errNUL: RFC 5322 text has no NUL octets; the message is refused.
var errNUL = errors.New("pickup: NUL octet in message")

// normalizer turns the bare LF line ends that local programs write into
// CRLF (and a bare CR as well), refuses NUL, and ends the message with a
// line break. Unlike SMTP, bare LF is the normal case here.
type normalizer struct {
	w      io.Writer
	prevCR bool
	last   byte
	tmp    []byte
}

func (n *normalizer) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 0) >= 0 {
		return 0, errNUL
	}
	out := n.tmp[:0]
	for _, c := range p {
		switch {
		case c == '\n':
			if !n.prevCR {
				out = append(out, '\r')
			}
			out = append(out, '\n')
			n.prevCR = false
			continue
		case n.prevCR:
			out = append(out, '\n')
		}
		out = append(out, c)
		n.prevCR = c == '\r'
	}
	if len(p) > 0 {
		n.last = p[len(p)-1]
	}
	n.tmp = out
	if _, err := n.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the last line.
func (n *normalizer) Close() error {
	var err error
	switch {
	case n.prevCR:
		_, err = n.w.Write([]byte{'\n'})
	case n.last != 0 && n.last != '\n':
		_, err = n.w.Write([]byte("\r\n"))
	}
	n.prevCR, n.last = false, '\n'
	return err
}

// spill keeps a message in memory up to memoryBufferBytes and in a
// temporary file beyond.
type spill struct {
	dir  string
	mem  bytes.Buffer
	f    *os.File
	size int64
}

func (b *spill) Write(p []byte) (int, error) {
	if b.f == nil && b.mem.Len()+len(p) > memoryBufferBytes {
		f, err := os.CreateTemp(b.dir, "popgate-pickup-*")
		if err != nil {
			return 0, fmt.Errorf("pickup: buffer message: %w", err)
		}
		b.f = f
		if _, err := f.Write(b.mem.Bytes()); err != nil {
			return 0, fmt.Errorf("pickup: buffer message: %w", err)
		}
		b.mem.Reset()
	}
	b.size += int64(len(p))
	if b.f != nil {
		n, err := b.f.Write(p)
		if err != nil {
			return n, fmt.Errorf("pickup: buffer message: %w", err)
		}
		return n, nil
	}
	return b.mem.Write(p)
}

// reader returns a fresh reader from offset off.
func (b *spill) reader(off int64) io.Reader {
	if b.f != nil {
		return io.NewSectionReader(b.f, off, b.size-off)
	}
	return bytes.NewReader(b.mem.Bytes()[off:])
}

// head returns up to n octets from the start.
func (b *spill) head(n int) ([]byte, error) {
	if b.f == nil {
		m := b.mem.Bytes()
		return m[:min(n, len(m))], nil
	}
	buf := make([]byte, min(int64(n), b.size))
	if _, err := b.f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("pickup: read buffered message: %w", err)
	}
	return buf, nil
}

func (b *spill) close() {
	if b.f != nil {
		_ = b.f.Close()
		_ = os.Remove(b.f.Name())
		b.f = nil
	}
}

// headerFix says what the server adds to a local message's header.
type headerFix struct {
	prefix    string // Received and warnings, CRLF-terminated
	from      string // sender address for a missing From:
	fullName  string // -F, for a missing From:
	now       time.Time
	messageID string // for a missing Message-ID:
}

// rewriteHeader returns the new header section for a message whose first
// octets are head (CRLF lines), and the offset in the original message
// from which the rest is copied unchanged. It drops Bcc: and Resent-Bcc:
// (as Postfix's cleanup does, so -t cannot leak them), and appends From:,
// Date: and Message-ID: when missing (RFC 5322 section 3.6 requires the
// first two). A message that starts with a non-header line gets a blank
// line before it, so its text stays body.
func rewriteHeader(head []byte, complete bool, fix headerFix) ([]byte, int, error) {
	var out bytes.Buffer
	out.WriteString(fix.prefix)
	has := map[string]bool{}
	off, bodyOff, needBlank := 0, -1, false
	inField, dropping := false, false
	for off < len(head) {
		end := bytes.Index(head[off:], []byte("\r\n"))
		if end < 0 {
			break
		}
		line := head[off : off+end+2]
		switch {
		case end == 0:
			bodyOff = off
		case line[0] == ' ' || line[0] == '\t':
			if !inField {
				bodyOff, needBlank = off, true
				break
			}
			if !dropping {
				out.Write(line)
			}
		default:
			name, ok := fieldName(line)
			if !ok {
				bodyOff, needBlank = off, true
				break
			}
			lname := strings.ToLower(name)
			has[lname] = true
			inField = true
			dropping = lname == "bcc" || lname == "resent-bcc"
			if !dropping {
				out.Write(line)
			}
		}
		if bodyOff >= 0 {
			break
		}
		off += end + 2
	}
	if bodyOff < 0 {
		if !complete || off < len(head) {
			return nil, 0, fmt.Errorf("pickup: header section longer than %d octets", maxHeaderBytes)
		}
		bodyOff = off // header only, no body
	}
	if !has["from"] {
		fmt.Fprintf(&out, "From: %s\r\n", (&mail.Address{Name: oneLine(fix.fullName), Address: fix.from}).String())
	}
	if !has["date"] {
		fmt.Fprintf(&out, "Date: %s\r\n", fix.now.Format(time.RFC1123Z))
	}
	if !has["message-id"] {
		fmt.Fprintf(&out, "Message-ID: <%s>\r\n", fix.messageID)
	}
	if needBlank {
		out.WriteString("\r\n")
	}
	return out.Bytes(), bodyOff, nil
}

// fieldName returns the name of a header field line (RFC 5322 section
// 2.2: printable ASCII except colon, then a colon).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	for _, c := range line[:i] {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(line[:i]), true
}

// oneLine makes a display name safe for a header: no control characters.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}
