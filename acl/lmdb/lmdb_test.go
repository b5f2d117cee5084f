package lmdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func entriesN(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: fmt.Appendf(nil, "10.%d.%d.%d\x00", i>>16&0xff, i>>8&0xff, i&0xff), Value: []byte("OK\x00")}
	}
	return es
}

func sortedCopy(es []Entry) []Entry {
	s := slices.Clone(es)
	slices.SortFunc(s, func(a, b Entry) int { return bytes.Compare(a.Key, b.Key) })
	return s
}

func TestRoundTrip(t *testing.T) {
	var mixed []Entry
	for i := range 3000 {
		v := []byte("REJECT")
		switch i % 97 {
		case 0:
			v = bytes.Repeat([]byte{byte(i)}, 2030+i%50) // around the overflow threshold
		case 1:
			v = bytes.Repeat([]byte("v"), 9000+i) // several overflow pages
		case 2:
			v = nil
		}
		mixed = append(mixed, Entry{Key: fmt.Appendf(nil, "key-%05d-%s", (i*7919)%3000, strings.Repeat("k", i%400)), Value: v})
	}
	tests := map[string][]Entry{
		"empty":     nil,
		"one":       {{Key: []byte("a"), Value: []byte("b")}},
		"long keys": {{Key: bytes.Repeat([]byte("a"), MaxKeySize), Value: []byte("1")}, {Key: []byte("b"), Value: bytes.Repeat([]byte("x"), 3000)}},
		"100k":      entriesN(100000),
		"mixed":     mixed,
		"binary":    {{Key: []byte{0}, Value: []byte{0}}, {Key: []byte{0xff}, Value: []byte{}}, {Key: []byte{0, 0}, Value: []byte("z")}},
	}
	for name, es := range tests {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(es)
			if err != nil {
				t.Fatal(err)
			}
			if len(data)%PageSize != 0 {
				t.Fatalf("file of %d bytes is not whole pages", len(data))
			}
			m, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			want := sortedCopy(es)
			got := m.Entries()
			if len(got) != len(want) {
				t.Fatalf("%d entries back, want %d", len(got), len(want))
			}
			for i, e := range want {
				if !bytes.Equal(got[i].Key, e.Key) || !bytes.Equal(got[i].Value, e.Value) {
					t.Fatalf("entry %d = %q, want %q", i, got[i].Key, e.Key)
				}
				v, ok := m.Get(e.Key)
				if !ok || !bytes.Equal(v, e.Value) {
					t.Fatalf("Get(%q) = %.20q, %v", e.Key, v, ok)
				}
			}
			for _, k := range []string{"", "missing", "10.255.255.255\x00", "0", "\xff\xff", "key-"} {
				if v, ok := m.Get([]byte(k)); ok {
					t.Errorf("Get(%q) = %q, want not found", k, v)
				}
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	_, err := Encode(append(entriesN(10), Entry{Key: []byte("10.0.0.3\x00"), Value: []byte("x")}))
	var dup *DuplicateKeyError
	if !errors.As(err, &dup) {
		t.Errorf("duplicate key: %v, want DuplicateKeyError", err)
	}
	for _, k := range [][]byte{nil, bytes.Repeat([]byte("k"), MaxKeySize+1)} {
		if _, err := Encode([]Entry{{Key: k, Value: []byte("v")}}); err == nil {
			t.Errorf("key of %d bytes accepted", len(k))
		}
	}
}

// TestDecodePostmapFile reads a file written by `postmap lmdb:` (Postfix
// 3.7, liblmdb 0.9.24): keys and values end in NUL there.
func TestDecodePostmapFile(t *testing.T) {
	data, err := os.ReadFile("testdata/postmap_small.lmdb")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Key: []byte("1.2.3.4\x00"), Value: []byte("REJECT\x00")}, {Key: []byte("foo.example\x00"), Value: []byte("OK\x00")}}
	got := m.Entries()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("entry %d = %q %q, want %q %q", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	if v, ok := m.Get([]byte("foo.example\x00")); !ok || string(v) != "OK\x00" {
		t.Errorf("Get = %q, %v", v, ok)
	}
}

func BenchmarkEncode100k(b *testing.B) {
	es := entriesN(100000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(es); err != nil {
			b.Fatal(err)
		}
	}
}
