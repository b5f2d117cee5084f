// Package cdb reads and writes D. J. Bernstein's constant database format
// in pure Go, as Postfix's cdb: tables (through tinycdb) and sendmail
// 8.16+'s cdb maps read it.
//
// A cdb file is a 2048-byte header of 256 (position, slot count) pairs,
// then the records (key length, value length, key, value), then 256 hash
// tables of (hash, record position) slots. Every number is a 32-bit
// little-endian integer on every machine, so a file is portable and
// limited to 4 GiB.
package cdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// headerSize is the size of the table of contents: 256 pairs of uint32.
const headerSize = 256 * 8

// Entry is one key and value. Bytes are stored exactly as given.
type Entry struct {
	Key, Value []byte
}

// CorruptError reports a file that is not a well-formed cdb. Offset is the
// byte offset where the problem was found.
type CorruptError struct {
	Offset int64
	Msg    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("cdb: corrupt at byte offset %d: %s", e.Offset, e.Msg)
}

func corruptf(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// DuplicateKeyError reports a key given twice to Encode. cdb itself would
// store both (a lookup finds the first), but a map with two answers for
// one key is a mistake in an access map, and postmap warns about it.
type DuplicateKeyError struct{ Key []byte }

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("cdb: duplicate key %q", e.Key)
}

// Hash is the cdb hash function: h = 5381; h = (h << 5 + h) ^ c per byte.
func Hash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = (h<<5 + h) ^ uint32(c)
	}
	return h
}

// slot is one hash table entry while encoding.
type slot struct {
	hash, pos uint32
}

// Writer builds a cdb file in memory record by record, as cdbmake does:
// Add appends records, Finish writes the hash tables and the header.
type Writer struct {
	out       []byte
	hashes    []uint32 // key hash of each record
	positions []uint32 // file offset of each record
	counts    [256]uint32
	err       error
}

// NewWriter starts a file. records and dataBytes (the total length of the
// keys and values to come) only size the buffers; 0 is fine.
func NewWriter(records, dataBytes int) *Writer {
	size := headerSize + 8*records + dataBytes + 16*records
	if size < 0 || uint64(size) > math.MaxUint32 {
		size = headerSize
	}
	return &Writer{
		out:       make([]byte, headerSize, size),
		hashes:    make([]uint32, 0, records),
		positions: make([]uint32, 0, records),
	}
}

// Add appends a record. A file that would pass the format's 4 GiB is an
// error, from here and from Finish.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	// The tables need 16 bytes per record on top of the records.
	if uint64(len(w.out))+8+uint64(len(key))+uint64(len(value))+16*uint64(len(w.hashes)+1) > math.MaxUint32 {
		w.err = fmt.Errorf("cdb: encode: %d records need more than the format's 4 GiB", len(w.hashes)+1)
		return w.err
	}
	h := Hash(key)
	w.hashes, w.positions = append(w.hashes, h), append(w.positions, uint32(len(w.out)))
	w.counts[h&0xff]++
	le := binary.LittleEndian
	w.out = le.AppendUint32(w.out, uint32(len(key)))
	w.out = le.AppendUint32(w.out, uint32(len(value)))
	w.out = append(w.out, key...)
	w.out = append(w.out, value...)
	return nil
}

// Finish writes the hash tables (two slots per record, linear probing
// from slot (hash >> 8) mod n of table hash & 0xff) and the header, and
// returns the file. A key added twice is a *DuplicateKeyError. The
// Writer must not be used afterwards.
func (w *Writer) Finish() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	out, le := w.out, binary.LittleEndian
	// Group records by table (a counting sort keeps input order inside
	// each table, which decides probe order as cdbmake's does).
	var start [257]uint32
	for t := range 256 {
		start[t+1] = start[t] + w.counts[t]
	}
	order := make([]uint32, len(w.hashes))
	next := start
	for i, h := range w.hashes {
		order[next[h&0xff]] = uint32(i)
		next[h&0xff]++
	}
	key := func(pos uint32) []byte { return out[pos+8 : pos+8+le.Uint32(out[pos:])] }
	var table []slot
	for t := range 256 {
		n := w.counts[t] * 2
		le.PutUint32(out[t*8:], uint32(len(out)))
		le.PutUint32(out[t*8+4:], n)
		if n == 0 {
			continue
		}
		table = append(table[:0], make([]slot, n)...)
		for _, i := range order[start[t]:start[t+1]] {
			h, pos := w.hashes[i], w.positions[i]
			for s := (h >> 8) % n; ; s = (s + 1) % n {
				sl := &table[s]
				if sl.pos == 0 {
					*sl = slot{hash: h, pos: pos}
					break
				}
				if sl.hash == h && bytes.Equal(key(sl.pos), key(pos)) {
					return nil, &DuplicateKeyError{Key: bytes.Clone(key(pos))}
				}
			}
		}
		for _, sl := range table {
			out = le.AppendUint32(out, sl.hash)
			out = le.AppendUint32(out, sl.pos)
		}
	}
	w.out = nil
	return out, nil
}

// Encode builds a cdb file holding entries, records in the order given.
// A key given twice is a *DuplicateKeyError; a file that would pass 4 GiB
// is an error.
func Encode(entries []Entry) ([]byte, error) {
	n := 0
	for _, e := range entries {
		n += len(e.Key) + len(e.Value)
	}
	w := NewWriter(len(entries), n)
	for _, e := range entries {
		if err := w.Add(e.Key, e.Value); err != nil {
			return nil, err
		}
	}
	return w.Finish()
}
