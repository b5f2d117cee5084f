package maildir

import (
	"bytes"
	"testing"
)

// FuzzParseIndex feeds arbitrary index files: no panic, and whatever parses
// survives a round trip through formatIndex.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte("popgate-sizes 1\nend 0\n"))
	f.Add([]byte("popgate-sizes 1\n12 a.b\n3 with space\nend 2\n"))
	f.Add([]byte("popgate-sizes 1\n12 a\nend 2\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseIndex(data)
		if err != nil {
			return
		}
		back, err := parseIndex(formatIndex(m))
		if err != nil {
			t.Fatalf("formatIndex output does not parse: %v", err)
		}
		if len(back) != len(m) {
			t.Fatalf("round trip: %d entries became %d", len(m), len(back))
		}
		for k, v := range m {
			if v < 0 || back[k] != v {
				t.Fatalf("entry %q: %d became %d", k, v, back[k])
			}
		}
	})
}

// FuzzLFWriter checks delivery's line-ending conversion against a plain
// reference, with the input split at an arbitrary point, and that the ",W="
// size it computes is what reading the stored file gives.
func FuzzLFWriter(f *testing.F) {
	f.Add([]byte("a\r\nb\n"), uint8(2))
	f.Add([]byte("\r\r\n\r"), uint8(1))
	f.Add([]byte("x\ry"), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		cut := int(split) % (len(in) + 1)
		var out bytes.Buffer
		w := newLFWriter(&out)
		if _, err := w.Write(in[:cut]); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(in[cut:]); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		want := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("%q became %q, want %q", in, out.Bytes(), want)
		}
		if w.size != int64(len(want)) {
			t.Fatalf("S=%d, want %d", w.size, len(want))
		}
		n, err := crlfSize(bytes.NewReader(want), make([]byte, 1+int(split)%7))
		if err != nil || n != w.crlfSize() {
			t.Fatalf("W=%d, crlfSize of stored = %d (%v)", w.crlfSize(), n, err)
		}
	})
}
