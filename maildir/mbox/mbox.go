// Package mbox splits a qpopper/mail.local spool file (mboxo: messages
// separated by "From " lines, body lines quoted as ">From ") into messages,
// read-only, reporting bad input with its byte offset.
package mbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Errors wrapped by *Error, tested with errors.Is.
var (
	// ErrNotMbox means the file does not start with a "From " line.
	ErrNotMbox = errors.New("not an mbox: no \"From \" line")
	// ErrBinary means the file holds a NUL byte, which no mail message may
	// (RFC 5322 §2.1): it is a binary file, not a spool.
	ErrBinary = errors.New("binary data (NUL byte)")
	// ErrTruncated means the file ends inside a message: in the middle of
	// a line or of the header section.
	ErrTruncated = errors.New("truncated message")
)

// Error is bad input at a byte offset of the file.
type Error struct {
	Offset    int64 // where the problem is
	MsgOffset int64 // where the message it is in starts (its "From " line); -1 when none
	Err       error
}

func (e *Error) Error() string {
	if e.MsgOffset >= 0 {
		return fmt.Sprintf("mbox: %v at byte offset %d (message starting at offset %d)", e.Err, e.Offset, e.MsgOffset)
	}
	return fmt.Sprintf("mbox: %v at byte offset %d", e.Err, e.Offset)
}

func (e *Error) Unwrap() error { return e.Err }

// readBufSize bounds the memory used per line: longer lines are read in
// pieces and never held whole.
const readBufSize = 64 * 1024

// maxHeaderValue bounds what is kept of a header value (X-UIDL is at most
// 70 characters, RFC 1939 §7; the others are short too).
const maxHeaderValue = 1000

// lookahead is how much is read at the end a Content-Length points to,
// enough for a blank line and a "From " line.
const lookahead = 512

// internalSubject is the subject of the pseudo-message UW imapd and Pine
// keep first in a folder; it is no mail and qpopper skips it too.
const internalSubject = "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA"

// Message is one message of the file, located by offsets.
type Message struct {
	// Offset is where its "From " line starts.
	Offset int64
	// Start and End delimit the message text: from the line after the
	// "From " line up to, not including, the blank line that separates it
	// from the next message (or the end of the file).
	Start, End int64
	// From is the "From " line without "From " and the line end.
	From string
	// Time is the delivery time from the "From " line (UTC unless the line
	// names a numeric zone).
	Time time.Time
	// UIDL is the first X-UIDL header's value, trimmed; "" when absent.
	UIDL string
	// Status is the first Status header's value, trimmed ("RO", "R", "O").
	Status string
	// Internal marks UW tools' "FOLDER INTERNAL DATA" pseudo-message.
	Internal bool
	// HeaderSum is a SHA-256 of the "From " line and the header section:
	// a stable identity for messages that carry no X-UIDL.
	HeaderSum [sha256.Size]byte
}

// Size is the length of the message text in the file.
func (m *Message) Size() int64 { return m.End - m.Start }

// Scan reads the whole file (size bytes of r) and calls fn for each
// message in order. It stops at the first bad input with an *Error, or at
// the first error fn returns. The file is only read.
func Scan(r io.ReaderAt, size int64, fn func(*Message) error) error {
	s := &scanner{ra: r, size: size, br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), readBufSize)}
	return s.run(fn)
}

type scanner struct {
	ra   io.ReaderAt
	size int64
	br   *bufio.Reader
	off  int64 // offset of the next byte to read

	cur       *Message // message being read; nil before the first
	inHeader  bool
	lastHdr   string // name of the header field being read, lowercased
	hash      hashWriter
	clEnd     int64 // where Content-Length says the message ends; -1 when unknown or inconsistent
	prevBlank bool  // the previous line was empty
	partial   bool  // the previous read ended inside a line
}

func (s *scanner) run(fn func(*Message) error) error {
	for {
		lineStart := s.off
		atLineStart := !s.partial
		line, err := s.br.ReadSlice('\n')
		s.off += int64(len(line))
		if len(line) > 0 {
			if i := bytes.IndexByte(line, 0); i >= 0 {
				return s.errAt(lineStart+int64(i), ErrBinary)
			}
		}
		switch {
		case err == nil:
			s.partial = false
		case errors.Is(err, bufio.ErrBufferFull):
			s.partial = true
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				return s.errAt(s.off, ErrTruncated)
			}
			return s.finish(fn)
		default:
			return fmt.Errorf("mbox: read at offset %d: %w", s.off, err)
		}
		if atLineStart && s.isSeparator(lineStart, line) {
			if err := s.endMessage(lineStart, fn); err != nil {
				return err
			}
			s.startMessage(lineStart, line)
			continue
		}
		if s.cur == nil {
			return s.errAt(lineStart, ErrNotMbox)
		}
		if atLineStart {
			s.bodyLine(line)
		}
		s.prevBlank = atLineStart && !s.partial && len(line) == 1
	}
}

// isSeparator reports whether a line starting at off begins a message: a
// valid "From " line at the start of the file or after an empty line,
// unless a consistent Content-Length puts the message end further on.
func (s *scanner) isSeparator(off int64, line []byte) bool {
	if !bytes.HasPrefix(line, []byte("From ")) || s.partial {
		return false
	}
	switch {
	case s.cur != nil && s.clEnd > off:
		return false
	case s.cur != nil && s.clEnd == off:
		// Right where Content-Length says: no blank line needed.
	case off != 0 && !s.prevBlank:
		return false
	}
	_, ok := parseFromLine(line)
	return ok
}

func (s *scanner) errAt(off int64, err error) error {
	msg := int64(-1)
	if s.cur != nil {
		msg = s.cur.Offset
	}
	return &Error{Offset: off, MsgOffset: msg, Err: err}
}

func (s *scanner) startMessage(off int64, line []byte) {
	t, _ := parseFromLine(line)
	s.cur = &Message{
		Offset: off,
		Start:  s.off,
		From:   string(bytes.TrimRight(line[len("From "):], "\r\n")),
		Time:   t,
	}
	s.inHeader = true
	s.lastHdr = ""
	s.clEnd = -1
	s.prevBlank = false
	s.hash.reset()
	s.hash.Write(line)
}

// endMessage completes the current message at the separator at off.
func (s *scanner) endMessage(off int64, fn func(*Message) error) error {
	if s.cur == nil {
		return nil
	}
	if s.inHeader {
		return s.errAt(off, ErrTruncated)
	}
	end := off
	switch {
	case s.clEnd >= 0:
		end = s.clEnd
	case s.prevBlank && end > s.cur.Start:
		end-- // the blank line before "From " separates, it is not text
	}
	return s.emit(end, fn)
}

func (s *scanner) finish(fn func(*Message) error) error {
	if s.cur == nil {
		return nil // an empty file is an empty mailbox
	}
	if s.inHeader {
		return s.errAt(s.off, ErrTruncated)
	}
	end := s.off
	switch {
	case s.clEnd >= 0:
		end = s.clEnd
	case s.prevBlank && end > s.cur.Start:
		end--
	}
	return s.emit(end, fn)
}

func (s *scanner) emit(end int64, fn func(*Message) error) error {
	m := s.cur
	m.End = end
	s.hash.sum(&m.HeaderSum)
	s.cur = nil
	return fn(m)
}

// bodyLine handles one whole line (or the first piece of a long one) of
// the current message.
func (s *scanner) bodyLine(line []byte) {
	if !s.inHeader {
		return
	}
	s.hash.Write(line)
	content := bytes.TrimRight(line, "\r\n")
	if len(content) == 0 && !s.partial {
		s.inHeader = false
		s.checkContentLength()
		return
	}
	if content[0] == ' ' || content[0] == '\t' {
		return // continuation of s.lastHdr; the fields read here are one line
	}
	name, value, ok := bytes.Cut(content, []byte{':'})
	if !ok {
		s.lastHdr = ""
		return
	}
	s.lastHdr = strings.ToLower(string(bytes.TrimSpace(name)))
	v := string(bytes.TrimSpace(value))
	if len(v) > maxHeaderValue {
		v = v[:maxHeaderValue]
	}
	m := s.cur
	switch s.lastHdr {
	case "x-uidl":
		if m.UIDL == "" {
			m.UIDL = v
		}
	case "status":
		if m.Status == "" {
			m.Status = v
		}
	case "subject":
		if m.Offset == 0 && v == internalSubject {
			m.Internal = true
		}
	case "x-imap", "x-imapbase":
		if m.Offset == 0 {
			m.Internal = true
		}
	case "content-length":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			s.clEnd = n // resolved when the header section ends
		} else {
			s.clEnd = -1
		}
	}
}

// checkContentLength keeps a Content-Length only when it is consistent:
// the body it delimits ends the file, or is followed by a "From " line
// (after an optional blank line). Otherwise it is ignored.
func (s *scanner) checkContentLength() {
	if s.clEnd < 0 {
		return
	}
	end := s.off + s.clEnd
	s.clEnd = -1
	if end > s.size {
		return
	}
	if end == s.size {
		s.clEnd = end
		return
	}
	buf := make([]byte, lookahead)
	n, _ := s.ra.ReadAt(buf, end)
	buf = buf[:n]
	if bytes.HasPrefix(buf, []byte("\n")) {
		buf = buf[1:]
	}
	if !bytes.HasPrefix(buf, []byte("From ")) {
		return
	}
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	}
	if _, ok := parseFromLine(buf); ok {
		s.clEnd = end
	}
}

// hashWriter computes HeaderSum without allocating per message.
type hashWriter struct {
	buf []byte
}

func (h *hashWriter) reset() { h.buf = h.buf[:0] }

func (h *hashWriter) Write(p []byte) {
	// Header sections are small; bound them anyway.
	if len(h.buf)+len(p) <= 1<<20 {
		h.buf = append(h.buf, p...)
	}
}

func (h *hashWriter) sum(out *[sha256.Size]byte) { *out = sha256.Sum256(h.buf) }
