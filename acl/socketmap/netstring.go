package socketmap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxRequest bounds one request netstring ("access connect:1.2.3.4" is
// 22 bytes; a From: key of a 64-octet local part and a 255-octet domain
// stays under 350). Postfix's socketmap client allows 100000-byte
// replies (socketmap_max_reply_size), far above any access value.
const maxRequest = 4096

// maxLenDigits is the most digits a length may have: enough for maxRequest.
const maxLenDigits = 5

// errMalformed is a request that breaks the netstring syntax. The stream
// cannot be resynchronised after it: the server answers PERM and closes.
type errMalformed struct{ msg string }

func (e *errMalformed) Error() string { return "socketmap: malformed netstring: " + e.msg }

// readNetstring reads one netstring "LEN:DATA," (D. J. Bernstein's
// netstrings, as sendmail's socket map and Postfix's socketmap: table
// speak them) of at most max data bytes. io.EOF before any byte is a
// clean close.
func readNetstring(r *bufio.Reader, max int) ([]byte, error) {
	n, digits := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && digits > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b == ':' {
			break
		}
		if b < '0' || b > '9' {
			return nil, &errMalformed{fmt.Sprintf("unexpected byte %q in the length", b)}
		}
		if digits > 0 && n == 0 {
			return nil, &errMalformed{"leading zero in the length"}
		}
		digits++
		if digits > maxLenDigits {
			return nil, &errMalformed{fmt.Sprintf("length has more than %d digits", maxLenDigits)}
		}
		n = n*10 + int(b-'0')
	}
	if digits == 0 {
		return nil, &errMalformed{"no length before ':'"}
	}
	if n > max {
		return nil, &errMalformed{fmt.Sprintf("length %d over the limit of %d", n, max)}
	}
	data := make([]byte, n+1)
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if data[n] != ',' {
		return nil, &errMalformed{fmt.Sprintf("data not followed by ',' (got %q)", data[n])}
	}
	return data[:n], nil
}

// appendNetstring appends s as a netstring to b.
func appendNetstring(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, ',')
}
