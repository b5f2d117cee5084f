package mapfile

import (
	"fmt"

	"github.com/popgate/popgate/acl/accessdb"
	"github.com/popgate/popgate/acl/cdb"
	"github.com/popgate/popgate/acl/lmdb"
)

// Map is a decoded map file of any format.
type Map struct {
	format  Format
	entries []accessdb.Entry
	get     func(key []byte) ([]byte, bool)
}

// Decode parses data as a map file of format f. Each format's reader
// checks the whole file and answers Get by a real keyed lookup.
func Decode(data []byte, f Format) (*Map, error) {
	switch f {
	case Hash, Hash185:
		m, err := accessdb.Decode(data)
		if err != nil {
			return nil, err
		}
		return fromAccessdb(m), nil
	case CDB:
		m, err := cdb.Decode(data)
		if err != nil {
			return nil, err
		}
		es := m.Entries()
		out := make([]accessdb.Entry, len(es))
		for i, e := range es {
			out[i] = accessdb.Entry(e)
		}
		return &Map{format: CDB, entries: out, get: m.Get}, nil
	case LMDB:
		m, err := lmdb.Decode(data)
		if err != nil {
			return nil, err
		}
		es := m.Entries()
		out := make([]accessdb.Entry, len(es))
		for i, e := range es {
			out[i] = accessdb.Entry(e)
		}
		return &Map{format: LMDB, entries: out, get: m.Get}, nil
	}
	return nil, fmt.Errorf("mapfile: decode: unknown format %v", f)
}

// fromAccessdb wraps a decoded Berkeley DB hash map.
func fromAccessdb(m *accessdb.Map) *Map {
	format := Hash
	if m.Format() == accessdb.Hash185 {
		format = Hash185
	}
	return &Map{format: format, entries: m.Entries(), get: m.Get}
}

// Encode builds a map file of format f holding entries (in that order
// where the format keeps one). A key given twice is an error.
func Encode(entries []accessdb.Entry, f Format) ([]byte, error) {
	switch f {
	case Hash:
		return accessdb.Encode(entries, accessdb.Hash)
	case Hash185:
		return accessdb.Encode(entries, accessdb.Hash185)
	case CDB: // straight from entries, without a converted copy
		n := 0
		for _, e := range entries {
			n += len(e.Key) + len(e.Value)
		}
		w := cdb.NewWriter(len(entries), n)
		for _, e := range entries {
			if err := w.Add(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
		return w.Finish()
	case LMDB:
		es := make([]lmdb.Entry, len(entries))
		for i, e := range entries {
			es[i] = lmdb.Entry(e)
		}
		return lmdb.Encode(es)
	}
	return nil, fmt.Errorf("mapfile: encode: unknown format %v", f)
}

// Get looks key up as the format's own reader would. It reports whether
// the key is present.
func (m *Map) Get(key []byte) ([]byte, bool) { return m.get(key) }

// Entries returns every pair: file order for hash and cdb, key order for
// LMDB.
func (m *Map) Entries() []accessdb.Entry { return m.entries }

// Format returns the format the map was decoded from.
func (m *Map) Format() Format { return m.format }
