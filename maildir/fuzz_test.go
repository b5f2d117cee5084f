package maildir

import (
	"bufio"
	"bytes"
	"io"
	"strings"
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

// FuzzScanHeader feeds arbitrary messages to final delivery's header
// scanner: what it returns followed by what it left unread is the input
// minus its Return-Path fields (the input itself when it has none), and
// every Delivered-To it reports is in the input.
func FuzzScanHeader(f *testing.F) {
	f.Add([]byte("Return-Path: <a@b>\r\nDelivered-To: u@example.com\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("return-path:\r\n <folded@x>\r\nX: 1\r\n\r\n"))
	f.Add([]byte("Delivered-To:\r\n\t<U@Example.COM>\n\nReturn-Path: in body\n"))
	f.Add([]byte("no header end"))
	f.Add([]byte(" leading continuation\r\nReturn-Path: x"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		header, delivered, err := scanHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		got := append(append([]byte{}, header...), rest...)
		if !bytes.Contains(bytes.ToLower(in), []byte("return-path")) && !bytes.Equal(got, in) {
			t.Fatalf("%q became %q", in, got)
		}
		if len(got) > len(in) || !bytes.HasSuffix(in, rest) {
			t.Fatalf("%q became %q", in, got)
		}
		// Folding whitespace is removed from the addresses reported.
		squeezed := strings.Join(strings.Fields(strings.ToLower(string(in))), "")
		for addr := range delivered {
			if !strings.Contains(squeezed, addr) {
				t.Fatalf("Delivered-To %q is not in %q", addr, in)
			}
		}
		for _, line := range bytes.SplitAfter(header, []byte("\n")) {
			if bytes.HasPrefix(bytes.ToLower(line), []byte("return-path:")) {
				t.Fatalf("Return-Path field left in %q (input %q)", header, in)
			}
		}
	})
}
