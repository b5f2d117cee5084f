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

// Encode builds a cdb file holding entries, records in the order given.
// A key given twice is a *DuplicateKeyError; a file that would pass 4 GiB
// is an error.
func Encode(entries []Entry) ([]byte, error) {
	size := uint64(headerSize) + 16*uint64(len(entries)) // header, then 2 slots of 8 bytes per entry
	for _, e := range entries {
		size += 8 + uint64(len(e.Key)) + uint64(len(e.Value))
	}
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("cdb: encode: %d entries need %d bytes, more than the format's 4 GiB", len(entries), size)
	}
	out := make([]byte, headerSize, size)
	var counts [256]uint32
	hashes := make([]uint32, len(entries))
	positions := make([]uint32, len(entries))
	le := binary.LittleEndian
	for i, e := range entries {
		h := Hash(e.Key)
		hashes[i], positions[i] = h, uint32(len(out))
		counts[h&0xff]++
		out = le.AppendUint32(out, uint32(len(e.Key)))
		out = le.AppendUint32(out, uint32(len(e.Value)))
		out = append(out, e.Key...)
		out = append(out, e.Value...)
	}
	// Group entries by table (a counting sort keeps input order inside
	// each table, which decides probe order as cdbmake's does).
	var start [257]uint32
	for t := range 256 {
		start[t+1] = start[t] + counts[t]
	}
	order := make([]int, len(entries))
	next := start
	for i, h := range hashes {
		order[next[h&0xff]] = i
		next[h&0xff]++
	}
	var table []slot
	for t := range 256 {
		n := counts[t] * 2
		le.PutUint32(out[t*8:], uint32(len(out)))
		le.PutUint32(out[t*8+4:], n)
		if n == 0 {
			continue
		}
		table = append(table[:0], make([]slot, n)...)
		for _, i := range order[start[t]:start[t+1]] {
			h := hashes[i]
			for s := (h >> 8) % n; ; s = (s + 1) % n {
				sl := &table[s]
				if sl.pos == 0 {
					*sl = slot{hash: h, pos: positions[i]}
					break
				}
				if sl.hash == h && bytes.Equal(entries[recordIndex(positions, sl.pos)].Key, entries[i].Key) {
					return nil, &DuplicateKeyError{Key: entries[i].Key}
				}
			}
		}
		for _, sl := range table {
			out = le.AppendUint32(out, sl.hash)
			out = le.AppendUint32(out, sl.pos)
		}
	}
	return out, nil
}

// recordIndex finds the entry written at pos; positions grow with the
// index, so a binary search does.
func recordIndex(positions []uint32, pos uint32) int {
	lo, hi := 0, len(positions)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if positions[m] < pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
