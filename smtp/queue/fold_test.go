package queue

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzFolder: on a CRLF-normalised body split anywhere, folding only
// inserts CRLF SP, and no line sent (with its transparency dot) is longer
// than 998 octets.
func FuzzFolder(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 3000)), uint16(7), uint16(997))
	f.Add([]byte("."+strings.Repeat("a", 1200)+"\n\n"), uint16(1), uint16(1))
	f.Add([]byte(strings.Repeat("ab \n", 10)), uint16(3), uint16(2))
	f.Fuzz(func(t *testing.T, raw []byte, split, stretch uint16) {
		if len(raw) > 1<<14 {
			return
		}
		// A normalised body from an alphabet that includes dots and
		// spaces; stretch makes some lines long.
		var in []byte
		for i, c := range raw {
			switch c % 5 {
			case 0:
				in = append(in, '\r', '\n')
			case 1:
				in = append(in, '.')
			case 2:
				in = append(in, ' ')
			default:
				in = append(in, 'x')
				if i == 0 {
					in = append(in, bytes.Repeat([]byte("y"), int(stretch)%3000)...)
				}
			}
		}
		k := int(split) % (len(in) + 1)
		var out bytes.Buffer
		fw := &folder{w: &out}
		if _, err := fw.Write(in[:k]); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(in[k:]); err != nil {
			t.Fatal(err)
		}
		got := out.Bytes()
		unfold := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n "), nil) }
		if !bytes.Equal(unfold(got), unfold(in)) {
			t.Fatalf("folding changed more than line breaks:\n in %q\nout %q", in, got)
		}
		for _, l := range bytes.Split(got, []byte("\r\n")) {
			if n := len(l) + btoi(bytes.HasPrefix(l, []byte("."))); n > maxWireLine {
				t.Fatalf("line of %d octets sent", n)
			}
		}
		if len(got) == len(in) && !bytes.Equal(got, in) {
			t.Fatal("same length but different")
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
