package cdb

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and a
// file it accepts must answer Get for each of its keys.
func FuzzDecode(f *testing.F) {
	for _, es := range [][]Entry{nil, entriesN(3), {{Key: []byte("k"), Value: []byte("v")}, {Key: nil, Value: nil}}} {
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
		values := make(map[string][][]byte)
		for _, e := range m.Entries() {
			values[string(e.Key)] = append(values[string(e.Key)], e.Value)
		}
		checked := 0
		for k, vs := range values {
			if checked++; checked > 64 { // a lookup may probe a whole table
				break
			}
			v, ok := m.Get([]byte(k))
			if !ok {
				continue // a record no slot points at is legal, only unusual
			}
			if !slices.ContainsFunc(vs, func(w []byte) bool { return bytes.Equal(v, w) }) {
				t.Fatalf("Get(%q) = %q, not a value of that key", k, v)
			}
		}
		m.Get([]byte("probe"))
	})
}
