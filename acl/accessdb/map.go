package accessdb

import (
	"encoding/binary"
	"fmt"
)

// Entry is one key/value pair of a map. Bytes are stored exactly as given:
// callers lowercase keys the way makemap does.
type Entry struct {
	Key, Value []byte
}

// Map is a decoded hash file. It keeps the file's bytes and answers Get by
// a keyed lookup through the on-disk structure, as libdb would.
type Map struct {
	format  Format
	entries []Entry
	lookup  func(key []byte) ([]byte, bool)
}

// Decode parses a hash file, detecting the format and byte order from its
// meta page. Every bucket and overflow chain is walked and checked; a
// corrupt file is a *CorruptError naming the byte offset.
func Decode(data []byte) (*Map, error) {
	if is185(data) {
		return decode185(data)
	}
	return decode5(data)
}

// Get looks key up the way libdb does: hash it, find its bucket, walk the
// bucket's pages. It reports whether the key is present.
func (m *Map) Get(key []byte) ([]byte, bool) { return m.lookup(key) }

// Entries returns every pair in file order (bucket by bucket, page by page).
func (m *Map) Entries() []Entry { return m.entries }

// Format returns the on-disk format the map was decoded from.
func (m *Map) Format() Format { return m.format }

// Encode builds a hash file of format f holding entries, with 4096-byte
// pages like makemap. A key given twice is a *DuplicateKeyError.
func Encode(entries []Entry, f Format) ([]byte, error) {
	switch f {
	case Hash:
		return encode5(entries, binary.LittleEndian)
	case Hash185:
		return encode185(entries, binary.LittleEndian)
	}
	return nil, fmt.Errorf("accessdb: encode: unknown format %v", f)
}
