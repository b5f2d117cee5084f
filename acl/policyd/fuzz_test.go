package policyd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadRequest feeds arbitrary bytes to the request reader, request
// after request, as one connection would: it must never panic, never
// return more than maxAttrs attributes, and always end (every call
// consumes input or fails).
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(request("RCPT", "198.51.100.7", "unknown", "bob@remote.example")))
	f.Add([]byte("request=smtpd_access_policy\nclient_address\n\n"))
	f.Add([]byte("a=b\r\n\r\nc=d\n\n\n"))
	f.Add([]byte("x=\x00\n\n"))
	f.Add(bytes.Repeat([]byte("y"), maxLine+10))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), maxLine)
		for range len(data) + 1 {
			attrs, err := readRequest(r, nil)
			var bad *errMalformed
			switch {
			case err == nil:
				if len(attrs) > maxAttrs {
					t.Fatalf("%d attributes", len(attrs))
				}
				for k := range attrs {
					if k == "" {
						t.Fatal("empty attribute name")
					}
				}
			case errors.As(err, &bad):
			default:
				return // EOF, a torn request or errTooLong end the connection
			}
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatal("reader loops without consuming input")
		}
	})
}
