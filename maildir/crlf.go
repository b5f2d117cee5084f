package maildir

import (
	"bytes"
	"io"
)

// lfWriter turns CRLF line endings into LF (the maildir convention) on the
// way to w, and counts both the bytes written (the ",S=" size) and the
// size the same text has with CRLF line endings (the ",W=" size, which is
// what POP3 reports). A CR not followed by LF is kept as it is. It works
// on runs between CRs, so a line costs one write to w, not one per byte.
type lfWriter struct {
	w         io.Writer
	pendingCR bool // input ended with CR: emit it or drop it on the next byte
	size      int64
	crlf      crlfCounter // of the output
}

// crlfCounter measures text as POP3 sends it: every byte, plus one for
// each LF not preceded by CR (it goes out as CRLF). Text may come in
// chunks split anywhere.
type crlfCounter struct {
	n      int64
	prevCR bool // the last byte counted was CR
}

func (c *crlfCounter) add(chunk []byte) {
	if len(chunk) == 0 {
		return
	}
	lf := bytes.Count(chunk, []byte{'\n'})
	crlf := bytes.Count(chunk, []byte("\r\n"))
	if c.prevCR && chunk[0] == '\n' {
		crlf++
	}
	c.n += int64(len(chunk)) + int64(lf-crlf)
	c.prevCR = chunk[len(chunk)-1] == '\r'
}

func newLFWriter(w io.Writer) *lfWriter {
	return &lfWriter{w: w}
}

var (
	lfOnly = []byte{'\n'}
	crOnly = []byte{'\r'}
)

// crlfSize is the size of the output so far with CRLF line endings.
func (l *lfWriter) crlfSize() int64 { return l.crlf.n }

// emit passes b (output bytes) on and counts it.
func (l *lfWriter) emit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	l.size += int64(len(b))
	l.crlf.add(b)
	_, err := l.w.Write(b)
	return err
}

// Write converts p and passes it on; it reports len(p) on success.
func (l *lfWriter) Write(p []byte) (int, error) {
	total := len(p)
	if l.pendingCR && len(p) > 0 {
		l.pendingCR = false
		held := crOnly
		if p[0] == '\n' {
			held, p = lfOnly, p[1:]
		}
		if err := l.emit(held); err != nil {
			return 0, err
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			if err := l.emit(p); err != nil {
				return 0, err
			}
			break
		}
		if err := l.emit(p[:i]); err != nil {
			return 0, err
		}
		if i+1 == len(p) {
			l.pendingCR = true
			break
		}
		next := crOnly // a lone CR is kept
		if p[i+1] == '\n' {
			next, i = lfOnly, i+1
		}
		if err := l.emit(next); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return total, nil
}

// Flush writes a CR held back at the end of the input.
func (l *lfWriter) Flush() error {
	if !l.pendingCR {
		return nil
	}
	l.pendingCR = false
	return l.emit(crOnly)
}

// crlfSize returns the size of what r yields as POP3 sends it: every byte,
// plus one for each LF not preceded by CR (it goes out as CRLF). buf is
// scratch space for reading.
func crlfSize(r io.Reader, buf []byte) (int64, error) {
	var c crlfCounter
	for {
		k, err := r.Read(buf)
		c.add(buf[:k])
		if err == io.EOF {
			return c.n, nil
		}
		if err != nil {
			return c.n, err
		}
	}
}
