package maildir

import (
	"bytes"
	"io"
)

// lfWriter turns CRLF line endings into LF (the maildir convention) on the
// way to w, and counts both the bytes written (the ",S=" size) and the
// size the same text has with CRLF line endings (the ",W=" size, which is
// what POP3 reports). A CR not followed by LF is kept as it is.
type lfWriter struct {
	w         io.Writer
	buf       []byte
	pendingCR bool // input ended with CR: emit it or drop it on the next byte
	lastOutCR bool // the last byte written was CR
	size      int64
	crlfSize  int64
}

func newLFWriter(w io.Writer) *lfWriter {
	return &lfWriter{w: w, buf: make([]byte, 0, 32*1024)}
}

func (l *lfWriter) emit(c byte) {
	l.buf = append(l.buf, c)
	l.size++
	l.crlfSize++
	if c == '\n' && !l.lastOutCR {
		l.crlfSize++
	}
	l.lastOutCR = c == '\r'
}

// Write converts p and passes it on; it reports len(p) on success.
func (l *lfWriter) Write(p []byte) (int, error) {
	l.buf = l.buf[:0]
	for _, c := range p {
		if l.pendingCR {
			l.pendingCR = false
			if c == '\n' {
				l.emit('\n')
				continue
			}
			l.emit('\r')
		}
		if c == '\r' {
			l.pendingCR = true
			continue
		}
		l.emit(c)
	}
	if _, err := l.w.Write(l.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a CR held back at the end of the input.
func (l *lfWriter) Flush() error {
	if !l.pendingCR {
		return nil
	}
	l.pendingCR = false
	l.buf = l.buf[:0]
	l.emit('\r')
	_, err := l.w.Write(l.buf)
	return err
}

// crlfSize returns the size of what r yields as POP3 sends it: every byte,
// plus one for each LF not preceded by CR (it goes out as CRLF). buf is
// scratch space for reading.
func crlfSize(r io.Reader, buf []byte) (int64, error) {
	var n int64
	prevCR := false
	for {
		k, err := r.Read(buf)
		if k > 0 {
			chunk := buf[:k]
			lf := bytes.Count(chunk, []byte{'\n'})
			crlf := bytes.Count(chunk, []byte("\r\n"))
			if prevCR && chunk[0] == '\n' {
				crlf++
			}
			n += int64(k) + int64(lf-crlf)
			prevCR = chunk[k-1] == '\r'
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
