package accessdb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must return a map or an
// error, never panic or loop, and every entry of a decoded map must be
// found by Get unless a key occurs twice.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"makemap_small.db", "postmap_small.db", "db185_small.db"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, fm := range []Format{Hash, Hash185} {
		b, err := Encode(genEntries(40, 0), fm)
		if err != nil && fm == Hash {
			f.Fatal(err)
		}
		if err == nil {
			f.Add(b)
		}
		b, _ = Encode([]Entry{{Key: []byte("k"), Value: []byte("v")}}, fm)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		count := map[string]int{}
		for _, e := range m.Entries() {
			count[string(e.Key)]++
		}
		for _, e := range m.Entries() {
			v, ok := m.Get(e.Key)
			if !ok {
				t.Fatalf("Get(%q): entry listed by Entries not found", e.Key)
			}
			if count[string(e.Key)] == 1 && !bytes.Equal(v, e.Value) {
				t.Fatalf("Get(%q) = %q, Entries says %q", e.Key, v, e.Value)
			}
		}
	})
}

// FuzzParseMakemap: whatever ParseMakemap accepts encodes and reads back.
func FuzzParseMakemap(f *testing.F) {
	f.Add([]byte("spamford.com REJECT\n192.168.0 RELAY\n# c\n\nUPPER ok  \n"))
	f.Add([]byte("  lead\n"))
	f.Add([]byte("dup 1\ndup 2\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		es, err := ParseMakemap(bytes.NewReader(in))
		if err != nil {
			return
		}
		data, err := Encode(es, Hash)
		if err != nil {
			t.Fatalf("Encode of parsed input: %v", err)
		}
		m, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode of encoded input: %v", err)
		}
		for _, e := range es {
			if v, ok := m.Get(e.Key); !ok || !bytes.Equal(v, e.Value) {
				t.Fatalf("Get(%q) = %q, %v", e.Key, v, ok)
			}
		}
	})
}
