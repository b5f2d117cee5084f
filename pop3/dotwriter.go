package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// dotWriter streams a message as the body of a multi-line response
// (RFC 1939 §3): every LF not preceded by CR becomes CRLF, a line starting
// with "." gets one more ".", and Close ends the response with ".\r\n".
// With a line limit it implements TOP (RFC 1939 §7): the header, the blank
// line and at most limit body lines.
type dotWriter struct {
	w      *bufio.Writer
	bol    bool // at the beginning of a line
	lastCR bool // the last byte written was a CR
	blank  bool // the current line so far holds nothing but an optional CR

	// TOP: limit < 0 means the whole message.
	limit  int
	inBody bool
	done   bool // the TOP limit was reached; further input is ignored
}

func newDotWriter(w *bufio.Writer, limit int) *dotWriter {
	return &dotWriter{w: w, bol: true, blank: true, limit: limit}
}

// errTopDone stops copying once TOP has sent the lines it was asked for.
var errTopDone = errors.New("pop3: top limit reached")

// Write converts and writes p. It returns errTopDone when the TOP limit is
// reached.
func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.done {
			return n, errTopDone
		}
		if d.lastCR && p[0] != '\n' {
			d.blank = false // the pending CR was data, not a line ending
		}
		if d.bol && p[0] == '.' {
			d.w.WriteByte('.') // RFC 1939 §3: byte-stuff the termination octet
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			d.w.Write(p)
			d.bol = false
			d.lastCR = p[len(p)-1] == '\r'
			if len(p) > 1 || !d.lastCR {
				d.blank = false
			}
			break
		}
		line := p[:i]
		cr := d.lastCR
		if i > 0 {
			cr = line[i-1] == '\r'
			if i > 1 || !cr {
				d.blank = false
			}
		}
		d.w.Write(line)
		if cr {
			d.w.WriteByte('\n')
		} else {
			d.w.WriteString("\r\n")
		}
		p = p[i+1:]
		d.endLine()
	}
	if d.done {
		return n, errTopDone
	}
	_, err := d.w.Write(nil) // surfaces a write error bufio.Writer kept
	return n, err
}

// endLine does the TOP bookkeeping after a complete line.
func (d *dotWriter) endLine() {
	if d.limit >= 0 {
		if d.inBody {
			d.limit--
		} else if d.blank {
			d.inBody = true
		}
		if d.inBody && d.limit == 0 {
			d.done = true
		}
	}
	d.bol, d.lastCR, d.blank = true, false, true
}

// Close ends an unterminated last line and writes the terminating ".".
func (d *dotWriter) Close() error {
	if !d.bol && !d.done {
		if d.lastCR {
			d.w.WriteByte('\n')
		} else {
			d.w.WriteString("\r\n")
		}
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// streamBody copies r through a dotWriter into w and terminates the
// multi-line response, reading through buf. limit < 0 sends everything;
// otherwise it is the TOP body line count.
func streamBody(w *bufio.Writer, r io.Reader, limit int, buf []byte) error {
	d := newDotWriter(w, limit)
	for !d.done {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := d.Write(buf[:n]); werr != nil && werr != errTopDone {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return d.Close()
}
