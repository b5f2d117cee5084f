package maildir

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLFWriter(t *testing.T) {
	tests := []struct {
		in, out string
		wsize   int64
	}{
		{"", "", 0},
		{"a\r\nb\r\n", "a\nb\n", 6},
		{"a\nb\n", "a\nb\n", 6},
		{"a\r\nb\n", "a\nb\n", 6},
		{"a\rb\r\n", "a\rb\n", 5}, // lone CR kept
		{"a\r\r\n", "a\r\n", 3},   // CR CR LF: the stored CR LF counts as is
		{"end\r", "end\r", 4},     // trailing CR kept
		{"\r\n\r\n", "\n\n", 4},   // empty lines
		{"no newline", "no newline", 10},
	}
	for _, tt := range tests {
		// Feed one byte at a time too, so CR LF split across writes is covered.
		for _, oneByte := range []bool{false, true} {
			var out bytes.Buffer
			w := newLFWriter(&out)
			var err error
			if oneByte {
				for i := 0; i < len(tt.in) && err == nil; i++ {
					_, err = w.Write([]byte{tt.in[i]})
				}
			} else {
				_, err = w.Write([]byte(tt.in))
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.out || w.size != int64(len(tt.out)) || w.crlfSize() != tt.wsize {
				t.Errorf("%q (byte-wise %v): got %q S=%d W=%d; want %q S=%d W=%d",
					tt.in, oneByte, out.String(), w.size, w.crlfSize(), tt.out, len(tt.out), tt.wsize)
			}
			// The W size must be what crlfSize computes from the stored file.
			n, err := crlfSize(strings.NewReader(out.String()), make([]byte, 3))
			if err != nil || n != tt.wsize {
				t.Errorf("crlfSize(%q) = %d, %v; want %d", out.String(), n, err, tt.wsize)
			}
		}
	}
}

func TestCRLFSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"a\n", 3},
		{"a\r\n", 3},
		{"\n\n\n", 6},
		{"\r\n\r\n", 4},
		{"\r", 1},
		{"\r\r\n\n", 5},
		{"x\ry\n", 5},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{1, 2, 3, 64} {
			got, err := crlfSize(strings.NewReader(tt.in), make([]byte, bufSize))
			if err != nil || got != tt.want {
				t.Errorf("crlfSize(%q, buf %d) = %d, %v; want %d", tt.in, bufSize, got, err, tt.want)
			}
		}
	}
	if _, err := crlfSize(iotest.ErrReader(iotest.ErrTimeout), make([]byte, 8)); err == nil {
		t.Error("read error not reported")
	}
}
