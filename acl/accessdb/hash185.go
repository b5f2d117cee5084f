package accessdb

import (
	"bytes"
	"encoding/binary"
)

// DB 1.85 hash constants (lib/libc/db/hash/hash.h and page.h of the BSDs).
const (
	version185    = 2     // HASHVERSION
	hdrSize185    = 260   // sizeof(HASHHDR)
	lorderLittle  = 1234  // LITTLE_ENDIAN, as stored in lorder
	lorderBig     = 4321  // BIG_ENDIAN
	maxBSize185   = 65536 // largest page size a u16 offset can address
	ovflPage185   = 0     // OVFLPAGE: the pair is a link to an overflow page
	partialKey185 = 1     // PARTIAL_KEY: a big key continues on the next page
	fullKey185    = 2     // FULL_KEY: a big key ends here, its data starts on the next page
	fullKeyData   = 3     // FULL_KEY_DATA: a big key ends here and its data starts (or a big data ends)
	realKey185    = 4     // REAL_KEY: offsets below this are markers
	splitShift185 = 11    // SPLITSHIFT: overflow address = split<<11 | page
	splitMask185  = 0x7FF // SPLITMASK
	defFFactor185 = 65536 // DEF_FFACTOR: "determine the fill factor later"
	minFFactor185 = 4     // MIN_FFACTOR
	defSegSize185 = 256   // DEF_SEGSIZE
	defDirSize185 = 256   // DEF_DIRSIZE
	h185MaxBucket = 40    // header offsets (all header fields are 32-bit big-endian)
	h185HighMask  = 44
	h185LowMask   = 48
	h185CharKey   = 64
	h185Spares    = 68
	h185Bitmaps   = 196
)

// hash185 is a decoded DB 1.85 hash file. The header is always big-endian;
// pages are in the byte order named by lorder.
type hash185 struct {
	data                         []byte
	bo                           binary.ByteOrder
	bsize                        int
	hdrPages                     uint32
	maxBucket, highMask, lowMask uint32
	spares                       [numSpares]uint32
}

func is185(data []byte) bool {
	return len(data) >= 8 && binary.BigEndian.Uint32(data) == hashMagic
}

func decode185(data []byte) (*Map, error) {
	h, err := parseHeader185(data)
	if err != nil {
		return nil, err
	}
	seen := map[uint32]bool{}
	var entries []Entry
	for b := uint32(0); b <= h.maxBucket; b++ {
		err := h.walk(h.bucketPage(b), seen, func(key, val []byte, off int64) error {
			if got := bucketOf(hashFunc4(key), h.maxBucket, h.highMask, h.lowMask); got != b {
				return corruptf(off, "key %q hashes to bucket %d but is stored in bucket %d", key, got, b)
			}
			entries = append(entries, Entry{Key: key, Value: val})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return &Map{format: Hash185, entries: entries, lookup: h.get}, nil
}

func parseHeader185(data []byte) (*hash185, error) {
	if len(data) < hdrSize185 {
		return nil, corruptf(int64(len(data)), "file is %d bytes, too short for a DB 1.85 hash header", len(data))
	}
	be := binary.BigEndian
	if v := be.Uint32(data[4:]); v != version185 && v != 1 {
		return nil, corruptf(4, "unsupported DB 1.85 hash version %d", v)
	}
	h := &hash185{data: data}
	switch be.Uint32(data[8:]) {
	case lorderLittle:
		h.bo = binary.LittleEndian
	case lorderBig:
		h.bo = binary.BigEndian
	default:
		return nil, corruptf(8, "bad byte order %d (want 1234 or 4321)", be.Uint32(data[8:]))
	}
	bs := be.Uint32(data[12:])
	if bs < 256 || bs > maxBSize185 || bs&(bs-1) != 0 {
		return nil, corruptf(12, "bad page size %d", bs)
	}
	h.bsize = int(bs)
	if len(data)%h.bsize != 0 {
		return nil, corruptf(int64(len(data)/h.bsize*h.bsize), "file size %d ends inside a page (page size %d)", len(data), h.bsize)
	}
	h.hdrPages = be.Uint32(data[60:])
	if h.hdrPages == 0 || int64(h.hdrPages)*int64(h.bsize) < hdrSize185 || h.hdrPages > 16 {
		return nil, corruptf(60, "bad header page count %d", h.hdrPages)
	}
	h.maxBucket = be.Uint32(data[h185MaxBucket:])
	h.highMask = be.Uint32(data[h185HighMask:])
	h.lowMask = be.Uint32(data[h185LowMask:])
	if h.highMask&(h.highMask+1) != 0 || h.lowMask&(h.lowMask+1) != 0 || h.maxBucket > h.highMask || h.lowMask > h.highMask {
		return nil, corruptf(h185MaxBucket, "inconsistent max_bucket %d, high_mask %#x, low_mask %#x", h.maxBucket, h.highMask, h.lowMask)
	}
	if int64(h.maxBucket) >= int64(len(data)/h.bsize)+1<<16 {
		return nil, corruptf(h185MaxBucket, "max_bucket %d is far beyond the file's %d pages", h.maxBucket, len(data)/h.bsize)
	}
	if ck := be.Uint32(data[h185CharKey:]); ck != hashFunc4([]byte(charKey)) {
		return nil, corruptf(h185CharKey, "h_charkey %#x: the file was written with a different hash function", ck)
	}
	for i := range h.spares {
		h.spares[i] = be.Uint32(data[h185Spares+4*i:])
		if h.spares[i] > 1<<24 {
			return nil, corruptf(h185Spares+4*int64(i), "spare point %d is %d", i, h.spares[i])
		}
	}
	return h, nil
}

// bucketPage is DB 1.85's BUCKET_TO_PAGE.
func (h *hash185) bucketPage(b uint32) uint32 {
	p := b + h.hdrPages
	if b != 0 {
		p += h.spares[log2Ceil(b+1)-1]
	}
	return p
}

// oaddrPage is DB 1.85's OADDR_TO_PAGE.
func (h *hash185) oaddrPage(a uint16) uint32 {
	split := uint32(a) >> splitShift185
	return h.bucketPage(1<<split-1) + uint32(a)&splitMask185
}

// page returns page pg; a page wholly past the end of the file reads as an
// empty page, as DB 1.85 treats it.
func (h *hash185) page(pg uint32) []byte {
	off := int64(pg) * int64(h.bsize)
	if off >= int64(len(h.data)) {
		return nil
	}
	return h.data[off : off+int64(h.bsize)]
}

// walk visits every pair of the chain starting at page pg.
func (h *hash185) walk(pg uint32, seen map[uint32]bool, fn func(key, val []byte, off int64) error) error {
	for {
		if seen != nil {
			if seen[pg] {
				return corruptf(int64(pg)*int64(h.bsize), "page %d reached twice (cycle or shared page)", pg)
			}
			seen[pg] = true
		}
		if pg < h.hdrPages {
			return corruptf(0, "chain points into the header (page %d)", pg)
		}
		d := h.page(pg)
		if d == nil {
			return nil
		}
		next, err := h.pairs(pg, d, seen, fn)
		if err != nil || next == 0 {
			return err
		}
		pg = next
	}
}

// pairs visits the pairs on one page and returns the next page of the
// chain (0 if none).
func (h *hash185) pairs(pg uint32, d []byte, seen map[uint32]bool, fn func(key, val []byte, off int64) error) (uint32, error) {
	base := int64(pg) * int64(h.bsize)
	n := int(h.bo.Uint16(d))
	if n%2 != 0 || (n+3)*2 > h.bsize {
		return 0, corruptf(base, "page %d: bad offset count %d", pg, n)
	}
	at := func(i int) int { return int(h.bo.Uint16(d[2*i:])) }
	meta := (n + 3) * 2
	prev := h.bsize
	for i := 1; i < n; i += 2 {
		ko, do := at(i), at(i+1)
		switch {
		case do >= realKey185:
			if ko > prev || do > ko || do < meta {
				return 0, corruptf(base+int64(2*i), "page %d: pair %d offsets %d, %d out of order", pg, i/2, ko, do)
			}
			if err := fn(d[ko:prev], d[do:ko], base+int64(ko)); err != nil {
				return 0, err
			}
			prev = do
		case do == ovflPage185:
			if i+1 != n {
				return 0, corruptf(base+int64(2*i), "page %d: overflow link is not the last entry", pg)
			}
			return h.oaddrPage(uint16(ko)), nil
		case i == 1:
			key, val, next, err := h.bigPair(pg, seen)
			if err != nil {
				return 0, err
			}
			if err := fn(key, val, base+int64(ko)); err != nil {
				return 0, err
			}
			return next, nil
		default:
			return 0, corruptf(base+int64(2*i+2), "page %d: big pair marker %d after other pairs", pg, do)
		}
	}
	return 0, nil
}

func (h *hash185) get(key []byte) ([]byte, bool) {
	pg := h.bucketPage(bucketOf(hashFunc4(key), h.maxBucket, h.highMask, h.lowMask))
	var val []byte
	found := false
	limit := uint32(len(h.data)/h.bsize) + 1
	for steps := uint32(0); steps <= limit && pg >= h.hdrPages && !found; steps++ {
		d := h.page(pg)
		if d == nil {
			return nil, false
		}
		next, err := h.pairs(pg, d, nil, func(k, v []byte, _ int64) error {
			if !found && bytes.Equal(k, key) {
				val, found = v, true
			}
			return nil
		})
		if err != nil || next == 0 {
			break
		}
		pg = next
	}
	return val, found
}

// bigPage is one page of a big key/data pair: n offsets, the offset of
// its bytes (bp[1]), its marker (bp[2]), and its overflow link if any.
type bigPage struct {
	d      []byte
	base   int64
	n      int
	off    int
	marker int
	link   uint16
	hasLnk bool
}

func (h *hash185) bigPageAt(pg uint32, seen map[uint32]bool, steps *int) (bigPage, error) {
	base := int64(pg) * int64(h.bsize)
	if *steps++; *steps > len(h.data)/h.bsize+1 {
		return bigPage{}, corruptf(base, "big pair chain longer than the file (cycle)")
	}
	if seen != nil && *steps > 1 { // the walk has marked the first page
		if seen[pg] {
			return bigPage{}, corruptf(base, "page %d reached twice (cycle or shared page)", pg)
		}
		seen[pg] = true
	}
	d := h.page(pg)
	if d == nil || pg < h.hdrPages {
		return bigPage{}, corruptf(base, "big pair continues on page %d, outside the file", pg)
	}
	at := func(i int) int { return int(h.bo.Uint16(d[2*i:])) }
	p := bigPage{d: d, base: base, n: at(0)}
	if p.n < 2 || p.n%2 != 0 || (p.n+3)*2 > h.bsize {
		return p, corruptf(base, "page %d: bad offset count %d in a big pair", pg, p.n)
	}
	p.off, p.marker = at(1), at(2)
	if p.off < (p.n+3)*2 || p.off > h.bsize {
		return p, corruptf(base+2, "page %d: big pair offset %d outside the page", pg, p.off)
	}
	if p.n >= 4 {
		p.link, p.hasLnk = uint16(at(3)), true
	}
	return p, nil
}

// bigPair reads a big key/data pair starting on page pg (DB 1.85's
// __big_return and collect_data) and returns the page that continues the
// bucket after it (0 if none).
func (h *hash185) bigPair(pg uint32, seen map[uint32]bool) (key, val []byte, next uint32, err error) {
	steps := 0
	at := func(p bigPage, i int) int { return int(h.bo.Uint16(p.d[2*i:])) }
	follow := func(p bigPage) (bigPage, error) {
		if !p.hasLnk {
			return p, corruptf(p.base+4, "big pair ends without its next page")
		}
		return h.bigPageAt(h.oaddrPage(p.link), seen, &steps)
	}
	p, err := h.bigPageAt(pg, seen, &steps)
	for err == nil && p.marker == partialKey185 {
		key = append(key, p.d[p.off:]...)
		p, err = follow(p)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	key = append(key, p.d[p.off:]...)
	switch p.marker {
	case fullKey185:
	case fullKeyData:
		if p.n < 4 {
			return nil, nil, 0, corruptf(p.base, "big key page without its data offset")
		}
		doff := at(p, p.n)
		if doff < (p.n+3)*2 || doff > p.off {
			return nil, nil, 0, corruptf(p.base+int64(2*p.n), "big pair data offset %d outside %d..%d", doff, (p.n+3)*2, p.off)
		}
		val = append(val, p.d[doff:p.off]...)
		if at(p, p.n+1) != 0 { // free space left: the data is complete
			return key, val, h.oaddrPage(p.link), nil
		}
	default:
		return nil, nil, 0, corruptf(p.base+4, "big key page with marker %d", p.marker)
	}
	for {
		if p, err = follow(p); err != nil {
			return nil, nil, 0, err
		}
		val = append(val, p.d[p.off:]...)
		switch p.marker {
		case fullKey185:
			continue
		case fullKeyData:
			if p.hasLnk {
				return key, val, h.oaddrPage(p.link), nil
			}
			return key, val, 0, nil
		}
		return nil, nil, 0, corruptf(p.base+4, "big data page with marker %d", p.marker)
	}
}
