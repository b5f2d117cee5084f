package accessdb

import (
	"bytes"
	"encoding/binary"
)

// DB 5.x on-disk constants (dbinc/db_page.h, dbinc/hash.h of Berkeley DB).
const (
	hashMagic       = 0x061561 // DB_HASHMAGIC
	hashVersion     = 9        // DB_HASHVERSION since DB 4.6 (sorted pages)
	pageSize        = 4096     // what makemap and postmap get on Linux
	pageHeaderSize  = 26       // SIZEOF_PAGE: lsn, pgno, prev, next, entries, hf_offset, level, type
	pTypeHashUnsort = 2        // P_HASH_UNSORTED (before DB 4.6)
	pTypeOverflow   = 7        // P_OVERFLOW
	pTypeHashMeta   = 8        // P_HASHMETA
	pTypeHash       = 13       // P_HASH: sorted hash page
	hKeyData        = 1        // H_KEYDATA: type byte, then the bytes
	hDuplicate      = 2        // H_DUPLICATE
	hOffPage        = 3        // H_OFFPAGE: type, 3 unused, pgno, total length
	hOffDup         = 4        // H_OFFDUP
	hOffPageSize    = 12       // HOFFPAGE_SIZE
	numSpares       = 32       // NCACHED
	metaMaxBucket   = 72       // offsets of HMETA fields after the 72-byte DBMETA
	metaHighMask    = 76
	metaLowMask     = 80
	metaFFactor     = 84
	metaNelem       = 88
	metaCharKey     = 92
	metaSpares      = 96
	dbHashDup       = 0x01 // DB_HASH_DUP in the meta flags
	dbHashSubdb     = 0x02 // DB_HASH_SUBDB
)

// page5 is a parsed DB 5.x page header.
type page5 struct {
	off              int64 // byte offset of the page in the file
	pgno, prev, next uint32
	entries          int
	hfOffset         int
	typ              byte
}

// hash5 is a decoded DB 5.x hash file.
type hash5 struct {
	data                         []byte
	bo                           binary.ByteOrder
	psize                        int
	lastPgno                     uint32
	maxBucket, highMask, lowMask uint32
	spares                       [numSpares]uint32
}

func decode5(data []byte) (*Map, error) {
	h, err := parseMeta5(data)
	if err != nil {
		return nil, err
	}
	seen := make([]bool, int(h.lastPgno)+1)
	seen[0] = true
	// nelem is a hint libdb keeps; a pair takes at least 6 bytes on a page.
	entries := make([]Entry, 0, min(int(h.bo.Uint32(data[metaNelem:])), len(data)/6))
	for b := uint32(0); b <= h.maxBucket; b++ {
		pg := h.bucketPage(b)
		first := true
		for pg != 0 {
			if pg > h.lastPgno {
				return nil, corruptf(h.pageOff(0)+metaSpares, "bucket %d: page %d beyond last page %d", b, pg, h.lastPgno)
			}
			if seen[pg] {
				return nil, corruptf(h.pageOff(pg), "bucket %d: page %d reached twice (cycle or shared page)", b, pg)
			}
			seen[pg] = true
			p, err := h.page(pg)
			if err != nil {
				return nil, err
			}
			if p.typ == 0 && first && h.zeroPage(pg) {
				break // a bucket page libdb allocated but never wrote: empty
			}
			if p.typ != pTypeHash && p.typ != pTypeHashUnsort {
				return nil, corruptf(p.off+25, "bucket %d: page %d has type %d, want a hash page", b, pg, p.typ)
			}
			err = h.eachPair(p, func(k, v item5) error {
				key, err := h.itemBytes(k, seen)
				if err != nil {
					return err
				}
				if got := bucketOf(hashFunc5(key), h.maxBucket, h.highMask, h.lowMask); got != b {
					return corruptf(k.off, "key %q hashes to bucket %d but is stored in bucket %d", key, got, b)
				}
				val, err := h.itemBytes(v, seen)
				if err != nil {
					return err
				}
				entries = append(entries, Entry{Key: key, Value: val})
				return nil
			})
			if err != nil {
				return nil, err
			}
			pg = p.next
			first = false
		}
	}
	return &Map{format: Hash, entries: entries, lookup: h.get}, nil
}

func parseMeta5(data []byte) (*hash5, error) {
	if len(data) < 512 {
		return nil, corruptf(int64(len(data)), "file is %d bytes, too short for a hash meta page", len(data))
	}
	h := &hash5{data: data}
	switch {
	case binary.LittleEndian.Uint32(data[12:]) == hashMagic:
		h.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(data[12:]) == hashMagic:
		h.bo = binary.BigEndian
	default:
		return nil, corruptf(12, "bad magic %#x, not a Berkeley DB hash file", binary.LittleEndian.Uint32(data[12:]))
	}
	bo := h.bo
	if v := bo.Uint32(data[16:]); v < 7 || v > hashVersion {
		return nil, corruptf(16, "unsupported hash version %d (want 7 to 9)", v)
	}
	ps := bo.Uint32(data[20:])
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 {
		return nil, corruptf(20, "bad page size %d", ps)
	}
	h.psize = int(ps)
	if data[24] != 0 {
		return nil, corruptf(24, "encrypted databases are not supported")
	}
	if data[25] != pTypeHashMeta {
		return nil, corruptf(25, "meta page type %d, want %d (hash meta)", data[25], pTypeHashMeta)
	}
	if f := bo.Uint32(data[48:]); f&(dbHashDup|dbHashSubdb) != 0 {
		return nil, corruptf(48, "meta flags %#x: duplicates and sub-databases are not supported", f)
	}
	h.lastPgno = bo.Uint32(data[32:])
	if need := (int64(h.lastPgno) + 1) * int64(h.psize); need > int64(len(data)) {
		return nil, corruptf(int64(len(data)), "file truncated: last page %d needs %d bytes, file has %d", h.lastPgno, need, len(data))
	}
	if int64(len(data))%int64(h.psize) != 0 {
		return nil, corruptf(int64(len(data)), "file size %d is not a multiple of the page size %d", len(data), h.psize)
	}
	h.maxBucket = bo.Uint32(data[metaMaxBucket:])
	h.highMask = bo.Uint32(data[metaHighMask:])
	h.lowMask = bo.Uint32(data[metaLowMask:])
	if h.highMask&(h.highMask+1) != 0 || h.lowMask&(h.lowMask+1) != 0 || h.maxBucket > h.highMask || h.lowMask > h.highMask {
		return nil, corruptf(metaMaxBucket, "inconsistent max_bucket %d, high_mask %#x, low_mask %#x", h.maxBucket, h.highMask, h.lowMask)
	}
	if h.maxBucket >= h.lastPgno {
		return nil, corruptf(metaMaxBucket, "max_bucket %d needs more pages than last page %d", h.maxBucket, h.lastPgno)
	}
	if ck := bo.Uint32(data[metaCharKey:]); ck != hashFunc5([]byte(charKey)) {
		return nil, corruptf(metaCharKey, "h_charkey %#x: the file was written with a different hash function", ck)
	}
	for i := range h.spares {
		h.spares[i] = bo.Uint32(data[metaSpares+4*i:])
	}
	for b := uint32(0); b <= h.maxBucket; b++ {
		if pg := h.bucketPage(b); pg == 0 || pg > h.lastPgno {
			return nil, corruptf(metaSpares+4*int64(log2Ceil(b+1)), "bucket %d maps to page %d, outside 1..%d", b, pg, h.lastPgno)
		}
	}
	return h, nil
}

// bucketPage is libdb's BUCKET_TO_PAGE.
func (h *hash5) bucketPage(b uint32) uint32 {
	return b + h.spares[log2Ceil(b+1)]
}

func (h *hash5) pageOff(pg uint32) int64 { return int64(pg) * int64(h.psize) }

func (h *hash5) zeroPage(pg uint32) bool {
	off := h.pageOff(pg)
	for _, c := range h.data[off : off+int64(h.psize)] {
		if c != 0 {
			return false
		}
	}
	return true
}

// page parses the header of page pg and checks its index array.
func (h *hash5) page(pg uint32) (page5, error) {
	off := h.pageOff(pg)
	d := h.data[off : off+int64(h.psize)]
	p := page5{
		off:      off,
		pgno:     h.bo.Uint32(d[8:]),
		prev:     h.bo.Uint32(d[12:]),
		next:     h.bo.Uint32(d[16:]),
		entries:  int(h.bo.Uint16(d[20:])),
		hfOffset: int(h.bo.Uint16(d[22:])),
		typ:      d[25],
	}
	if p.typ == 0 && p.pgno == 0 {
		return p, nil // never written; callers decide whether that is allowed
	}
	if p.pgno != pg {
		return p, corruptf(off+8, "page %d says it is page %d", pg, p.pgno)
	}
	if p.next > h.lastPgno {
		return p, corruptf(off+16, "page %d: next page %d beyond last page %d", pg, p.next, h.lastPgno)
	}
	if p.typ == pTypeOverflow {
		return p, nil
	}
	if p.entries%2 != 0 {
		return p, corruptf(off+20, "page %d: odd number of items %d", pg, p.entries)
	}
	hdr := pageHeaderSize + 2*p.entries
	if hdr > h.psize || p.hfOffset < hdr || p.hfOffset > h.psize {
		return p, corruptf(off+22, "page %d: %d items and free-space offset %d do not fit a %d-byte page", pg, p.entries, p.hfOffset, h.psize)
	}
	prev := h.psize
	for i := 0; i < p.entries; i++ {
		o := int(h.bo.Uint16(d[pageHeaderSize+2*i:]))
		if o < p.hfOffset || o >= prev {
			return p, corruptf(off+int64(pageHeaderSize+2*i), "page %d: item %d at offset %d outside %d..%d", pg, i, o, p.hfOffset, prev-1)
		}
		prev = o
	}
	return p, nil
}

// item5 locates one item on a page.
type item5 struct {
	off      int64 // byte offset of the item in the file
	start    int   // offset within the page
	end      int
	pageData []byte
}

// eachPair calls fn for each key/data pair of page p, in index order.
func (h *hash5) eachPair(p page5, fn func(k, v item5) error) error {
	d := h.data[p.off : p.off+int64(h.psize)]
	prev := h.psize
	var items [2]item5
	for i := 0; i < p.entries; i++ {
		o := int(h.bo.Uint16(d[pageHeaderSize+2*i:]))
		items[i%2] = item5{off: p.off + int64(o), start: o, end: prev, pageData: d}
		prev = o
		if i%2 == 1 {
			if err := fn(items[0], items[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// itemBytes returns an item's bytes, following an off-page item's overflow
// chain. seen, when not nil, marks the pages used (cycle detection across
// the whole file during Decode).
func (h *hash5) itemBytes(it item5, seen []bool) ([]byte, error) {
	d := it.pageData[it.start:it.end]
	if len(d) == 0 {
		return nil, corruptf(it.off, "empty item")
	}
	switch d[0] {
	case hKeyData:
		return d[1:], nil
	case hOffPage:
		if len(d) < hOffPageSize {
			return nil, corruptf(it.off, "off-page item of %d bytes, want %d", len(d), hOffPageSize)
		}
		return h.overflow(h.bo.Uint32(d[4:]), h.bo.Uint32(d[8:]), it.off, seen)
	case hDuplicate, hOffDup:
		return nil, corruptf(it.off, "duplicate data items are not supported")
	}
	return nil, corruptf(it.off, "unknown item type %d", d[0])
}

// overflow reads a total-byte item from the overflow chain starting at pg.
func (h *hash5) overflow(pg, total uint32, ref int64, seen []bool) ([]byte, error) {
	if int64(total) > int64(len(h.data)) {
		return nil, corruptf(ref+8, "overflow item of %d bytes is larger than the file", total)
	}
	out := make([]byte, 0, total)
	for steps := uint32(0); ; steps++ {
		if pg == 0 || pg > h.lastPgno {
			return nil, corruptf(ref, "overflow chain: page %d outside 1..%d", pg, h.lastPgno)
		}
		if steps > h.lastPgno {
			return nil, corruptf(ref, "overflow chain longer than the file (cycle)")
		}
		if seen != nil {
			if seen[pg] {
				return nil, corruptf(h.pageOff(pg), "overflow page %d reached twice (cycle or shared page)", pg)
			}
			seen[pg] = true
		}
		p, err := h.page(pg)
		if err != nil {
			return nil, err
		}
		if p.typ != pTypeOverflow {
			return nil, corruptf(p.off+25, "page %d has type %d, want overflow", pg, p.typ)
		}
		n := p.hfOffset // OV_LEN
		if n == 0 || pageHeaderSize+n > h.psize || len(out)+n > int(total) {
			return nil, corruptf(p.off+22, "overflow page %d: bad length %d", pg, n)
		}
		out = append(out, h.data[p.off+pageHeaderSize:p.off+int64(pageHeaderSize+n)]...)
		if len(out) == int(total) {
			if p.next != 0 {
				return nil, corruptf(p.off+16, "overflow page %d: chain continues after %d bytes", pg, total)
			}
			return out, nil
		}
		ref = p.off + 16
		pg = p.next
	}
}

// get is the keyed lookup: bucket, then the bucket's pages.
func (h *hash5) get(key []byte) ([]byte, bool) {
	pg := h.bucketPage(bucketOf(hashFunc5(key), h.maxBucket, h.highMask, h.lowMask))
	for steps := uint32(0); pg != 0 && pg <= h.lastPgno && steps <= h.lastPgno; steps++ {
		p, err := h.page(pg)
		if err != nil || (p.typ != pTypeHash && p.typ != pTypeHashUnsort) {
			return nil, false
		}
		var val []byte
		found := false
		_ = h.eachPair(p, func(k, v item5) error {
			if found || !h.itemEqual(k, key) {
				return nil
			}
			b, err := h.itemBytes(v, nil)
			if err == nil {
				val, found = b, true
			}
			return nil
		})
		if found {
			return val, true
		}
		pg = p.next
	}
	return nil, false
}

// itemEqual compares an item with key, reading an off-page key only when
// its length matches.
func (h *hash5) itemEqual(it item5, key []byte) bool {
	d := it.pageData[it.start:it.end]
	if len(d) == 0 {
		return false
	}
	switch d[0] {
	case hKeyData:
		return bytes.Equal(d[1:], key)
	case hOffPage:
		if len(d) < hOffPageSize || h.bo.Uint32(d[8:]) != uint32(len(key)) {
			return false
		}
		b, err := h.itemBytes(it, nil)
		return err == nil && bytes.Equal(b, key)
	}
	return false
}
