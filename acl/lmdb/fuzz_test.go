package lmdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and a
// file it accepts must answer Get with each of its entries.
func FuzzDecode(f *testing.F) {
	for _, es := range [][]Entry{nil, entriesN(3), entriesN(400), {{Key: []byte("big"), Value: bytes.Repeat([]byte("v"), 5000)}}} {
		data, err := Encode(es)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		for _, e := range m.Entries() {
			if v, ok := m.Get(e.Key); !ok || !bytes.Equal(v, e.Value) {
				t.Fatalf("Get(%q) = %q, %v; want %q", e.Key, v, ok, e.Value)
			}
		}
		m.Get([]byte("probe"))
	})
}

func TestDecodeCorrupt(t *testing.T) {
	good, err := Encode(entriesN(2000))
	if err != nil {
		t.Fatal(err)
	}
	bo := binary.NativeEndian
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	leaf := func(b []byte) []byte { return b[2*PageSize : 3*PageSize] } // the first leaf
	root := bo.Uint64(good[PageSize+metaMainDB+40:])
	tests := map[string][]byte{
		"short":          good[:100],
		"one meta":       good[:PageSize],
		"bad magic":      mutate(func(b []byte) { b[metaMagic]++ }),
		"bad version":    mutate(func(b []byte) { bo.PutUint32(b[PageSize+metaVersion:], 2) }),
		"other order":    mutate(func(b []byte) { bo.PutUint32(b[metaMagic:], bits.ReverseBytes32(magic)) }),
		"page size":      mutate(func(b []byte) { bo.PutUint32(b[metaFreeDB:], 1000) }),
		"not meta":       mutate(func(b []byte) { bo.PutUint16(b[PageSize+10:], flagLeaf) }),
		"truncated":      good[:len(good)-PageSize],
		"root outside":   mutate(func(b []byte) { bo.PutUint64(b[PageSize+metaMainDB+40:], 1<<40) }),
		"root is meta":   mutate(func(b []byte) { bo.PutUint64(b[PageSize+metaMainDB+40:], 1) }),
		"depth":          mutate(func(b []byte) { bo.PutUint16(b[PageSize+metaMainDB+6:], 40) }),
		"entries":        mutate(func(b []byte) { bo.PutUint64(b[PageSize+metaMainDB+32:], 1999) }),
		"dupsort":        mutate(func(b []byte) { bo.PutUint16(b[PageSize+metaMainDB+4:], 0x04) }),
		"page number":    mutate(func(b []byte) { bo.PutUint64(leaf(b), 7) }),
		"bounds":         mutate(func(b []byte) { bo.PutUint16(leaf(b)[12:], 8) }),
		"node offset":    mutate(func(b []byte) { bo.PutUint16(leaf(b)[pageHdrSize:], 4) }),
		"key size":       mutate(func(b []byte) { p := leaf(b); bo.PutUint16(p[int(bo.Uint16(p[pageHdrSize:]))+6:], 4000) }),
		"value size":     mutate(func(b []byte) { p := leaf(b); bo.PutUint16(p[int(bo.Uint16(p[pageHdrSize:])):], 4000) }),
		"key order":      mutate(func(b []byte) { p := leaf(b); p[int(bo.Uint16(p[pageHdrSize:]))+nodeHdrSize+3] = 'z' }),
		"leaf as branch": mutate(func(b []byte) { bo.PutUint16(leaf(b)[10:], flagBranch) }),
		"branch key": mutate(func(b []byte) {
			p := b[root*PageSize:]
			n := p[bo.Uint16(p[pageHdrSize+2:]):] // the second child's separator
			n[nodeHdrSize+3] = 'z'
		}),
		"cycle": mutate(func(b []byte) {
			p := b[root*PageSize:]
			n := p[bo.Uint16(p[pageHdrSize+2:]):] // second child points at the first
			copy(n[:6], p[bo.Uint16(p[pageHdrSize:]):][:6])
		}),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(data)
			var ce *CorruptError
			if name == "dupsort" {
				if err == nil || errors.As(err, &ce) {
					t.Fatalf("Decode = %v, want an unsupported-format error", err)
				}
				return
			}
			if !errors.As(err, &ce) {
				t.Fatalf("Decode = %v, want a CorruptError", err)
			}
		})
	}
}
