package cdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
)

func entriesN(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: fmt.Appendf(nil, "connect:10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), Value: []byte("RELAY")}
	}
	return es
}

func TestRoundTrip(t *testing.T) {
	big := Entry{Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 70000)}
	tests := map[string][]Entry{
		"empty":     nil,
		"one":       {{Key: []byte("a"), Value: []byte("b")}},
		"emptykey":  {{Key: []byte{}, Value: []byte("v")}, {Key: []byte("k"), Value: []byte{}}},
		"binary":    {{Key: []byte("k\x00"), Value: []byte("v\x00")}, {Key: []byte("\xff\x00\x01"), Value: []byte("\n")}},
		"big value": {big, {Key: []byte("small"), Value: []byte("OK")}},
		"10k":       entriesN(10000),
	}
	for name, es := range tests {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(es)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			got := m.Entries()
			if len(got) != len(es) {
				t.Fatalf("%d entries back, want %d", len(got), len(es))
			}
			for i, e := range es {
				if !bytes.Equal(got[i].Key, e.Key) || !bytes.Equal(got[i].Value, e.Value) {
					t.Fatalf("entry %d = %q, want %q", i, got[i].Key, e.Key)
				}
				v, ok := m.Get(e.Key)
				if !ok || !bytes.Equal(v, e.Value) {
					t.Fatalf("Get(%q) = %q, %v", e.Key, v, ok)
				}
			}
			for _, k := range []string{"missing", "connect:10.255.255.255", "a\x00"} {
				if v, ok := m.Get([]byte(k)); ok {
					t.Errorf("Get(%q) = %q, want not found", k, v)
				}
			}
		})
	}
}

func TestEncodeDuplicateKey(t *testing.T) {
	es := append(entriesN(100), Entry{Key: []byte("connect:10.0.0.7"), Value: []byte("REJECT")})
	_, err := Encode(es)
	var dup *DuplicateKeyError
	if !errors.As(err, &dup) || string(dup.Key) != "connect:10.0.0.7" {
		t.Fatalf("Encode with a duplicate = %v, want DuplicateKeyError", err)
	}
}

// TestDecodePostmapFile reads a file written by Postfix's `postmap cdb:`
// (3.7, tinycdb) and checks that Encode writes the same bytes for the
// same records in the same order.
func TestDecodePostmapFile(t *testing.T) {
	data, err := os.ReadFile("testdata/postmap_small.cdb")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Key: []byte("foo.example"), Value: []byte("OK")}, {Key: []byte("1.2.3.4"), Value: []byte("REJECT")}}
	for i, e := range m.Entries() {
		if !bytes.Equal(e.Key, want[i].Key) || !bytes.Equal(e.Value, want[i].Value) {
			t.Errorf("entry %d = %q %q, want %q", i, e.Key, e.Value, want[i].Key)
		}
	}
	if v, ok := m.Get([]byte("1.2.3.4")); !ok || string(v) != "REJECT" {
		t.Errorf("Get(1.2.3.4) = %q, %v", v, ok)
	}
	ours, err := Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, data) {
		t.Errorf("Encode differs from postmap's file")
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good, err := Encode(entriesN(50))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	recordsEnd := le.Uint32(good[0:]) // table 0 starts where the records end
	tests := map[string][]byte{
		"short":              good[:100],
		"table outside":      mutate(func(b []byte) { le.PutUint32(b[8:], uint32(len(b))); le.PutUint32(b[12:], 1) }),
		"table in header":    mutate(func(b []byte) { le.PutUint32(b[8:], 10) }),
		"slots outside":      mutate(func(b []byte) { le.PutUint32(b[12:], 1<<30) }),
		"record too long":    mutate(func(b []byte) { le.PutUint32(b[headerSize+4:], 1<<20) }),
		"slot not a record":  mutate(func(b []byte) { le.PutUint32(b[recordsEnd+4:], headerSize+1) }),
		"slot wrong hash":    mutate(func(b []byte) { corruptFirstSlot(b, recordsEnd, func(s []byte) { s[1] ^= 0xff }) }),
		"truncated tables":   good[:len(good)-8],
		"record into tables": mutate(func(b []byte) { le.PutUint32(b[0:], headerSize+3) }),
		"tables overlap": mutate(func(b []byte) {
			for t := range 256 { // each fits the file, together they do not
				le.PutUint32(b[t*8:], recordsEnd)
				le.PutUint32(b[t*8+4:], (uint32(len(b))-recordsEnd)/8)
			}
		}),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(data)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode = %v, want a CorruptError", err)
			}
		})
	}
}

// corruptFirstSlot applies f to the first used slot after from.
func corruptFirstSlot(b []byte, from uint32, f func(slot []byte)) {
	for off := from; off+8 <= uint32(len(b)); off += 8 {
		if binary.LittleEndian.Uint32(b[off+4:]) != 0 {
			f(b[off : off+8])
			return
		}
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
