// Package mapfile reads and writes the map files popgate keeps in step
// with its relay rules, in each format a mail server reads: Berkeley DB
// hash (acl/accessdb, rewritten in place under flock), cdb (acl/cdb) and
// LMDB (acl/lmdb), the last two replaced whole by a rename.
package mapfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/popgate/popgate/acl/accessdb"
)

// Format is a map file format.
type Format int

const (
	// Hash is the Berkeley DB 5.x hash format (makemap hash, postmap hash:).
	Hash Format = iota
	// Hash185 is the DB 1.85 hash format of the BSD C libraries.
	Hash185
	// CDB is D. J. Bernstein's constant database (postmap cdb:, sendmail
	// 8.16+ cdb maps). The file name ends in ".cdb".
	CDB
	// LMDB is the Lightning Memory-Mapped Database (postmap lmdb:). The
	// file name ends in ".lmdb"; the file is in the machine's byte order.
	LMDB
)

// Formats lists the configuration names, for messages.
const Formats = `"hash", "hash185", "cdb" or "lmdb"`

// ParseFormat parses a configuration name: hash, hash185, cdb or lmdb.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "hash":
		return Hash, nil
	case "hash185":
		return Hash185, nil
	case "cdb":
		return CDB, nil
	case "lmdb":
		return LMDB, nil
	}
	return 0, fmt.Errorf("mapfile: unknown format %q (want %s)", s, Formats)
}

// String returns the configuration name of f.
func (f Format) String() string {
	switch f {
	case Hash:
		return "hash"
	case Hash185:
		return "hash185"
	case CDB:
		return "cdb"
	case LMDB:
		return "lmdb"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Extension is the suffix Postfix and sendmail add to a map's name for f
// ("cdb:/etc/postfix/popgate" is the file /etc/postfix/popgate.cdb).
func (f Format) Extension() string {
	switch f {
	case CDB:
		return ".cdb"
	case LMDB:
		return ".lmdb"
	}
	return ".db"
}

// ForPath is the format a new file's name implies: ".cdb" and ".lmdb"
// name theirs, anything else is hash.
func ForPath(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".cdb":
		return CDB
	case ".lmdb":
		return LMDB
	}
	return Hash
}

// Detect names the format of an existing file's data: Berkeley DB and
// LMDB files carry a magic number; cdb has none, so a file without one is
// cdb only when its name ends in ".cdb".
func Detect(path string, data []byte) (Format, error) {
	// Either byte order, so that the decoder can say what is wrong with
	// a file from another machine.
	magicAt := func(off int, m uint32) bool {
		return len(data) >= off+4 && (binary.LittleEndian.Uint32(data[off:]) == m || binary.BigEndian.Uint32(data[off:]) == m)
	}
	switch {
	case magicAt(12, 0x061561): // DB 5 hash meta page: LSN, page number, magic
		return Hash, nil
	case magicAt(0, 0x061561):
		return Hash185, nil
	case magicAt(16, 0xBEEFC0DE): // LMDB meta page: page header, magic
		return LMDB, nil
	case ForPath(path) == CDB:
		return CDB, nil
	}
	return 0, fmt.Errorf("mapfile: %s: not a Berkeley DB hash or LMDB file, and not named *.cdb", path)
}

// PostmapForm returns entries as postmap stores them in format f: keys
// and values of an LMDB map end in NUL (postmap lmdb: writes them so on
// Linux), hash and cdb maps have none (makemap and postmap cdb: write
// none, and both readers try either form).
func PostmapForm(f Format, entries []accessdb.Entry) []accessdb.Entry {
	if f != LMDB {
		return entries
	}
	n := 0
	for _, e := range entries {
		n += len(e.Key) + len(e.Value) + 2
	}
	arena := make([]byte, 0, n) // one allocation for every key and value
	out := make([]accessdb.Entry, len(entries))
	for i, e := range entries {
		start := len(arena)
		arena = appendNulTerminated(arena, e.Key)
		k := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = appendNulTerminated(arena, e.Value)
		out[i] = accessdb.Entry{Key: k, Value: arena[start:len(arena):len(arena)]}
	}
	return out
}

// appendNulTerminated appends b to dst, then a NUL unless b already ends
// in one.
func appendNulTerminated(dst, b []byte) []byte {
	dst = append(dst, b...)
	if bytes.HasSuffix(b, []byte{0}) {
		return dst
	}
	return append(dst, 0)
}
