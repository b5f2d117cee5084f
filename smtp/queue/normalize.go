package queue

import "io"

// normReader copies a message while turning every bare LF and bare CR
// into CRLF (RFC 5321 §2.3.8) and ending it with CRLF, so the spooled
// body is exactly what goes on the wire before dot-stuffing and its size
// is what SIZE (RFC 1870) compares. It also notes 8-bit octets.
type normReader struct {
	src      io.Reader
	in       []byte
	buf      []byte
	out      []byte
	lastCR   bool
	lastByte byte
	wrote    bool
	eof      bool
	size     int64
	eightBit bool
}

func newNormReader(src io.Reader) *normReader {
	return &normReader{src: src, in: make([]byte, 32<<10), buf: make([]byte, 0, 64<<10)}
}

// reset makes n ready for another message, keeping its buffers; src nil
// drops the old source before n goes back to a pool.
func (n *normReader) reset(src io.Reader) {
	*n = normReader{src: src, in: n.in, buf: n.buf[:0]}
}

func (n *normReader) Read(p []byte) (int, error) {
	for len(n.out) == 0 {
		if n.eof {
			return 0, io.EOF
		}
		n.buf = n.buf[:0]
		k, err := n.src.Read(n.in)
		n.convert(n.in[:k])
		if err == io.EOF {
			n.eof = true
			n.finish()
		} else if err != nil {
			return 0, err
		}
		n.out = n.buf
	}
	c := copy(p, n.out)
	n.out = n.out[c:]
	n.size += int64(c)
	return c, nil
}

func (n *normReader) emit(b ...byte) {
	n.buf = append(n.buf, b...)
	n.lastByte = b[len(b)-1]
	n.wrote = true
}

func (n *normReader) convert(p []byte) {
	for _, b := range p {
		if b >= 0x80 {
			n.eightBit = true
		}
		if n.lastCR && b != '\n' {
			n.emit('\n') // complete a bare CR
		}
		switch b {
		case '\r':
			n.emit('\r')
			n.lastCR = true
			continue
		case '\n':
			if n.lastCR {
				n.emit('\n')
			} else {
				n.emit('\r', '\n')
			}
		default:
			n.emit(b)
		}
		n.lastCR = false
	}
}

func (n *normReader) finish() {
	switch {
	case n.lastCR:
		n.emit('\n')
	case n.wrote && n.lastByte != '\n':
		n.emit('\r', '\n')
	}
	n.lastCR = false
}
