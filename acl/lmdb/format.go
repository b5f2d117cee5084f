// Package lmdb reads and writes Lightning Memory-Mapped Database files in
// pure Go, as Postfix's lmdb: tables read them: one file (MDB_NOSUBDIR),
// the unnamed main database, no duplicate keys, 4096-byte pages.
//
// The on-disk layout, from the liblmdb headers' descriptions:
//
//   - Pages 0 and 1 are meta pages. Each holds the magic 0xBEEFC0DE, the
//     format version 1, the map size, two database records (the free-page
//     database and the main database: depth, page counts, entry count,
//     root page), the last page number used and a transaction id. A
//     reader takes the meta page with the larger transaction id.
//   - Every page starts with a 16-byte header: page number (8 bytes),
//     padding (2), flags (2: branch 0x01, leaf 0x02, overflow 0x04, meta
//     0x08) and either the lower and upper free-space bounds (2+2) or, on
//     an overflow page, the number of pages the value spans (4).
//   - Branch and leaf pages hold, after the header, an array of 16-bit
//     offsets to their nodes, sorted by key; the nodes sit at the end of
//     the page, each 2-byte aligned: a leaf node is data size (4 bytes as
//     two 16-bit halves), flags (2), key size (2), key, value; a branch
//     node puts the 48-bit child page number where a leaf has the data
//     size and flags. A branch page's first key is ignored (empty).
//   - A value too big for a node (node size above 2038 bytes with 4096
//     pages) goes on consecutive overflow pages; the leaf node then holds
//     its page number and the F_BIGDATA flag.
//   - Keys compare as memcmp, then the shorter first. Keys are 1 to 511
//     bytes.
//
// Numbers are in the machine's byte order and pointer-sized numbers are 8
// bytes: an LMDB file is not portable across byte orders (or to 32-bit
// builds of liblmdb). Encode writes, and Decode reads, the byte order of
// the machine it runs on.
package lmdb

import (
	"encoding/binary"
	"fmt"
)

// PageSize is the page size Encode writes (Decode reads any the meta page
// names).
const PageSize = 4096

// MaxKeySize is liblmdb's default limit on a key's length.
const MaxKeySize = 511

const (
	magic       = 0xBEEFC0DE
	dataVersion = 1
	pageHdrSize = 16
	nodeHdrSize = 8
	invalidPgno = ^uint64(0)

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagOverflow = 0x04
	flagMeta     = 0x08

	nodeBigData = 0x01 // value on overflow pages
	nodeSubData = 0x02 // named sub-database
	nodeDupData = 0x04 // sorted duplicates

	// Environment flags kept in the free database's record: MDB_NOSUBDIR
	// (one file, as Postfix opens it) and MDB_INTEGERKEY, which liblmdb
	// always sets there because the free database is keyed by txnid.
	envFlags = 0x4000 | 0x08

	// minMapSize is Postfix's default lmdb_map_size (16 MiB); the meta
	// page records at least that, or the file size.
	minMapSize = 16 << 20

	// Offsets inside a meta page (after the page header).
	metaMagic    = pageHdrSize + 0
	metaVersion  = pageHdrSize + 4
	metaMapSize  = pageHdrSize + 16
	metaFreeDB   = pageHdrSize + 24
	metaMainDB   = metaFreeDB + dbRecordSize
	metaLastPage = metaMainDB + dbRecordSize
	metaTxnID    = metaLastPage + 8
	dbRecordSize = 48
)

// nodeMax is the largest leaf node kept in a page (liblmdb's me_nodemax:
// room for two nodes and their offsets); a bigger one moves its value to
// overflow pages.
func nodeMax(psize int) int { return (psize-pageHdrSize)/2&^1 - 2 }

// dbRecord is MDB_db: one database's root and statistics.
type dbRecord struct {
	pad      uint32 // the page size, in the free database's record
	flags    uint16
	depth    uint16
	branches uint64
	leaves   uint64
	overflow uint64
	entries  uint64
	root     uint64
}

func (d *dbRecord) put(bo binary.ByteOrder, b []byte) {
	bo.PutUint32(b[0:], d.pad)
	bo.PutUint16(b[4:], d.flags)
	bo.PutUint16(b[6:], d.depth)
	bo.PutUint64(b[8:], d.branches)
	bo.PutUint64(b[16:], d.leaves)
	bo.PutUint64(b[24:], d.overflow)
	bo.PutUint64(b[32:], d.entries)
	bo.PutUint64(b[40:], d.root)
}

func getDBRecord(bo binary.ByteOrder, b []byte) dbRecord {
	return dbRecord{
		pad: bo.Uint32(b[0:]), flags: bo.Uint16(b[4:]), depth: bo.Uint16(b[6:]),
		branches: bo.Uint64(b[8:]), leaves: bo.Uint64(b[16:]), overflow: bo.Uint64(b[24:]),
		entries: bo.Uint64(b[32:]), root: bo.Uint64(b[40:]),
	}
}

// Entry is one key and value. Bytes are stored exactly as given.
type Entry struct {
	Key, Value []byte
}

// CorruptError reports a file that is not a well-formed LMDB map. Offset
// is the byte offset where the problem was found.
type CorruptError struct {
	Offset int64
	Msg    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("lmdb: corrupt at byte offset %d: %s", e.Offset, e.Msg)
}

func corruptf(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// DuplicateKeyError reports a key given twice to Encode.
type DuplicateKeyError struct{ Key []byte }

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("lmdb: duplicate key %q", e.Key)
}

// even rounds n up to a multiple of 2, the node alignment.
func even(n int) int { return (n + 1) &^ 1 }
