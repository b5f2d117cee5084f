package cdb

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
)

// Map is a decoded cdb file. It keeps the file's bytes and answers Get
// through the hash tables, as tinycdb's cdb_find does.
type Map struct {
	data    []byte
	tables  [256]struct{ pos, n uint32 }
	entries []Entry
}

// Decode parses a cdb file. Every record and every hash table slot is
// checked to lie inside the file, and every slot to point at a record
// start with the hash of that record's key; a violation is a
// *CorruptError.
func Decode(data []byte) (*Map, error) {
	if len(data) < headerSize {
		return nil, corruptf(0, "file of %d bytes is shorter than the %d-byte header", len(data), headerSize)
	}
	if uint64(len(data)) > math.MaxUint32 {
		return nil, corruptf(0, "file of %d bytes is larger than 4 GiB", len(data))
	}
	le := binary.LittleEndian
	m := &Map{data: data}
	end := uint64(len(data)) // where the records stop: the first table
	var slots uint64
	for t := range 256 {
		pos, n := le.Uint32(data[t*8:]), le.Uint32(data[t*8+4:])
		if pos < headerSize || uint64(pos)+8*uint64(n) > uint64(len(data)) {
			return nil, corruptf(int64(t*8), "table %d at %d with %d slots lies outside the file", t, pos, n)
		}
		m.tables[t].pos, m.tables[t].n = pos, n
		end = min(end, uint64(pos))
		slots += uint64(n)
	}
	// Writers put the tables one after the other behind the records; at
	// least they must fit there, which also bounds the work below.
	if 8*slots > uint64(len(data))-end {
		return nil, corruptf(0, "hash tables of %d slots do not fit in the %d bytes after the records", slots, uint64(len(data))-end)
	}
	// Record positions ascend, so a slot's record is found by binary
	// search; hashes[i] is the key hash of the record at starts[i].
	var starts, hashes []uint32
	for pos := uint64(headerSize); pos < end; {
		if pos+8 > end {
			return nil, corruptf(int64(pos), "record header runs into the hash tables")
		}
		klen, vlen := uint64(le.Uint32(data[pos:])), uint64(le.Uint32(data[pos+4:]))
		if pos+8+klen+vlen > end {
			return nil, corruptf(int64(pos), "record of %d+%d bytes runs into the hash tables", klen, vlen)
		}
		k := data[pos+8 : pos+8+klen : pos+8+klen]
		v := data[pos+8+klen : pos+8+klen+vlen : pos+8+klen+vlen]
		m.entries = append(m.entries, Entry{Key: k, Value: v})
		starts, hashes = append(starts, uint32(pos)), append(hashes, Hash(k))
		pos += 8 + klen + vlen
	}
	for t, tb := range m.tables {
		for s := range tb.n {
			off := uint64(tb.pos) + 8*uint64(s)
			h, pos := le.Uint32(data[off:]), le.Uint32(data[off+4:])
			if pos == 0 {
				continue
			}
			i, ok := slices.BinarySearch(starts, pos)
			if !ok {
				return nil, corruptf(int64(off), "slot points at %d, not at a record", pos)
			}
			want := hashes[i]
			if h != want || int(h&0xff) != t {
				return nil, corruptf(int64(off), "slot hash %#x does not match its record's key hash %#x in table %d", h, want, t)
			}
		}
	}
	return m, nil
}

// Get looks key up the way cdb readers do: hash it, pick the table by the
// low 8 bits, probe from slot (hash >> 8) mod n until an empty slot. It
// returns the first record with that key.
func (m *Map) Get(key []byte) ([]byte, bool) {
	le := binary.LittleEndian
	h := Hash(key)
	tb := m.tables[h&0xff]
	if tb.n == 0 {
		return nil, false
	}
	s := (h >> 8) % tb.n
	for range tb.n {
		off := tb.pos + 8*s
		sh, pos := le.Uint32(m.data[off:]), le.Uint32(m.data[off+4:])
		if pos == 0 {
			return nil, false
		}
		if sh == h { // Decode checked that pos starts a record inside the file
			klen, vlen := le.Uint32(m.data[pos:]), le.Uint32(m.data[pos+4:])
			k := m.data[pos+8 : pos+8+klen]
			if bytes.Equal(k, key) {
				return m.data[pos+8+klen : pos+8+klen+vlen : pos+8+klen+vlen], true
			}
		}
		if s++; s == tb.n {
			s = 0
		}
	}
	return nil, false
}

// Entries returns every record in file order.
func (m *Map) Entries() []Entry { return m.entries }
