package queue

import "io"

// maxWireLine is the longest line sent to the next hop, CRLF excluded:
// RFC 5321 §4.5.3.1.6 (1000 octets with CRLF), and the default of
// Postfix's smtp_line_length_limit.
const maxWireLine = 998

// folder passes a spooled (CRLF-normalised) body to the next hop, breaking
// every line longer than maxWireLine octets by inserting CRLF SP, as
// Postfix's smtp_line_length_limit does: a header line stays one folded
// header (RFC 5322 §2.2.3), a body line loses nothing but gains spaces,
// and MIME structure survives. The continuation's space counts towards
// its line, so no line sent is longer than maxWireLine, even with the
// dot that transparency adds to a line beginning with a dot. Lines are kept
// whole in the spool and in local delivery; only relaying folds, because
// a receiver may refuse longer lines (RFC 5321 only asks it to take them).
type folder struct {
	w   io.Writer
	col int // octets in the current line so far
	buf []byte
}

func (f *folder) Write(p []byte) (int, error) {
	out := f.buf[:0]
	for _, c := range p {
		switch c {
		case '\n':
			f.col = 0
		case '\r':
			// The first half of CRLF in a normalised body: not line text.
		default:
			if f.col == maxWireLine {
				out = append(out, '\r', '\n', ' ')
				f.col = 1
			}
			if f.col == 0 && c == '.' {
				// Dot-stuffing will double it (RFC 5321 §4.5.2); RFC
				// 5321 does not count that octet, some receivers do.
				f.col++
			}
			f.col++
		}
		out = append(out, c)
	}
	f.buf = out
	if _, err := f.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
