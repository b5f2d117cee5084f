package accessdb

import (
	"bytes"
	"strings"
	"testing"
)

// The cases follow what sendmail 8.17's makemap hash does with the same
// input (see the package tests' notes): only a '#' in column one is a
// comment, values keep trailing blanks and CR, keys are lowercased.
func TestParseMakemap(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Entry
	}{
		{"empty", "", nil},
		{"blank lines and comments", "\n# comment\n\n#x y\n", nil},
		{"basic", "spamford.com REJECT\n192.168.0\tRELAY\n", []Entry{{[]byte("spamford.com"), []byte("REJECT")}, {[]byte("192.168.0"), []byte("RELAY")}}},
		{"lowercase keys only", "Upper.Case.COM OK Mixed\n", []Entry{{[]byte("upper.case.com"), []byte("OK Mixed")}}},
		{"value keeps inner and trailing blanks", "a  b c # not a comment  \n", []Entry{{[]byte("a"), []byte("b c # not a comment  ")}}},
		{"value keeps CR", "key\tV\r\n", []Entry{{[]byte("key"), []byte("V\r")}}},
		{"tabs and spaces between", "x\t\t y  \n", []Entry{{[]byte("x"), []byte("y  ")}}},
		{"last line without newline", "a b\nc d", []Entry{{[]byte("a"), []byte("b")}, {[]byte("c"), []byte("d")}}},
		{"longest line makemap takes", "k " + strings.Repeat("v", 1020) + "\n", []Entry{{[]byte("k"), bytes.Repeat([]byte("v"), 1020)}}},
		{"high bytes", "caf\xc3\xa9.example OK\n", []Entry{{[]byte("caf\xc3\xa9.example"), []byte("OK")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMakemap(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries %q, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i].Key, tc.want[i].Key) || !bytes.Equal(got[i].Value, tc.want[i].Value) {
					t.Errorf("entry %d = %q %q, want %q %q", i, got[i].Key, got[i].Value, tc.want[i].Key, tc.want[i].Value)
				}
			}
		})
	}
}

func TestParseMakemapErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"leading space", "a b\n  lead value\n", "line 2: syntax error (leading space)"},
		{"indented comment", "  # c\n", "line 1: syntax error (leading space)"},
		{"blank-only line", "   \n", "line 1: syntax error (leading space)"},
		{"no value", "a b\nnorhs\n", "line 2: no RHS for LHS norhs"},
		{"no value, trailing blanks", "norhs   \n", "line 1: no RHS for LHS norhs"},
		{"duplicate", "dup 1\nDUP 2\n", "line 2: key dup: duplicate key (first on line 1)"},
		{"too long", "k " + strings.Repeat("v", 1021) + "\n", "line 1: line too long"},
		{"very long", strings.Repeat("v", 100_000), "line 1: line too long"},
		{"NUL", "a\x00b v\n", "line 1: NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMakemap(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFormatDump(t *testing.T) {
	var b bytes.Buffer
	es := []Entry{{[]byte("a"), []byte("RELAY")}, {[]byte("b.example"), []byte("OK with spaces ")}}
	if err := FormatDump(&b, es); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "a\tRELAY\nb.example\tOK with spaces \n"; got != want {
		t.Errorf("FormatDump = %q, want %q", got, want)
	}
	// makemap's input and -u output round-trip.
	back, err := ParseMakemap(&b)
	if err != nil || len(back) != 2 || string(back[1].Value) != "OK with spaces " {
		t.Errorf("ParseMakemap(FormatDump) = %q, %v", back, err)
	}
	if err := FormatDump(failWriter{}, es); err == nil {
		t.Error("FormatDump to a failing writer: no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }
