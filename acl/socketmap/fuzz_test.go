package socketmap

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzReadNetstring: arbitrary bytes never panic the reader; what it
// returns is within the limit and encodes back to exactly the bytes it
// consumed.
func FuzzReadNetstring(f *testing.F) {
	f.Add([]byte("27:access connect:198.51.100.7,"))
	f.Add([]byte("0:,3:abc,"))
	f.Add([]byte("05:hello,"))
	f.Add([]byte("99999:x"))
	f.Add([]byte("GET / HTTP/1.0\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		consumed := 0
		for {
			got, err := readNetstring(r, maxRequest)
			if err != nil {
				var bad *errMalformed
				_ = errors.As(err, &bad)
				return
			}
			if len(got) > maxRequest {
				t.Fatalf("%d bytes over the limit", len(got))
			}
			enc := appendNetstring(nil, string(got))
			if !bytes.Equal(enc, data[consumed:consumed+len(enc)]) {
				t.Fatalf("decoded %q does not re-encode to the input %q", got, data[consumed:])
			}
			consumed += len(enc)
		}
	})
}
