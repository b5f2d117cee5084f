package policyd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits on one request of the policy delegation protocol. Postfix 3.7
// sends about 30 attributes, each well under a kilobyte (a client
// certificate's subject is the longest); these leave room and bound what
// a hostile client can make the server hold.
const (
	maxLine    = 8 * 1024  // one name=value line, newline included
	maxAttrs   = 128       // attributes in one request
	maxRequest = 64 * 1024 // the whole request; beyond it the connection is closed
)

// errMalformed marks a request that was read to its end (the empty line)
// but cannot be answered: the connection stays in step and gets an
// answer. Any other error from readRequest ends the connection.
type errMalformed struct{ msg string }

func (e *errMalformed) Error() string { return "policy request malformed: " + e.msg }

// errTooLong ends a connection whose request passes maxRequest.
var errTooLong = fmt.Errorf("policy request longer than %d bytes", maxRequest)

// readRequest reads one request: "name=value" lines up to an empty line
// (SMTPD_POLICY_README, "Protocol description"). An over-long line is
// skipped to its end, so the dialog stays in step; a line without '=',
// a NUL byte or too many attributes make the request malformed. first is
// called once the first line has arrived (the caller then shortens the
// deadline from idle to per-request). io.EOF before any byte is a clean
// close.
func readRequest(r *bufio.Reader, first func()) (map[string]string, error) {
	attrs := make(map[string]string, 32)
	var bad error
	total := 0
	for n := 0; ; n++ {
		line, size, long, err := readLine(r)
		total += size
		if err != nil {
			if n == 0 && size == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if n == 0 && first != nil {
			first()
		}
		if total > maxRequest {
			return nil, errTooLong
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 && !long {
			if bad != nil {
				return nil, bad
			}
			return attrs, nil
		}
		if bad != nil {
			continue
		}
		switch {
		case long:
			bad = &errMalformed{fmt.Sprintf("line %d longer than %d bytes", n+1, maxLine)}
		case bytes.IndexByte(line, 0) >= 0:
			bad = &errMalformed{fmt.Sprintf("line %d has a NUL byte", n+1)}
		case len(attrs) >= maxAttrs:
			bad = &errMalformed{fmt.Sprintf("more than %d attributes", maxAttrs)}
		default:
			name, value, ok := bytes.Cut(line, []byte("="))
			if !ok || len(name) == 0 {
				bad = &errMalformed{fmt.Sprintf("line %d is not name=value", n+1)}
				continue
			}
			attrs[string(name)] = string(value)
		}
	}
}

// readLine returns one line with its newline and the bytes it took. A
// line longer than maxLine (r's buffer size) is consumed to its end, or
// until maxRequest bytes, and reported with long set and no bytes.
func readLine(r *bufio.Reader) (line []byte, size int, long bool, err error) {
	for {
		b, err := r.ReadSlice('\n')
		size += len(b)
		if errors.Is(err, bufio.ErrBufferFull) || len(b) > maxLine {
			long = true
			if size > maxRequest {
				return nil, size, true, errTooLong
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
		}
		if long {
			return nil, size, true, err
		}
		return b, size, false, err
	}
}
