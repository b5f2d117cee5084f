package lmdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// child is a page and the first key under it, for the level above.
type child struct {
	key  []byte
	pgno uint64
}

// encoder lays pages out one after the other in out.
type encoder struct {
	bo  binary.ByteOrder
	out []byte
	db  dbRecord // the main database's record, filled as pages are made
}

// pgno is the number of the next page appended.
func (e *encoder) pgno() uint64 { return uint64(len(e.out) / PageSize) }

// Encode builds an LMDB file holding entries in its main (unnamed)
// database, the way Postfix's postmap lmdb: does, with 4096-byte pages in
// the machine's byte order. Entries may come in any order; a key given
// twice is a *DuplicateKeyError, an empty key or one longer than
// MaxKeySize an error.
func Encode(entries []Entry) ([]byte, error) {
	if len(entries) > math.MaxInt32 {
		return nil, fmt.Errorf("lmdb: encode: %d entries are too many", len(entries))
	}
	// Sort indexes, not the entries: the caller's slice stays as it was
	// and 4-byte swaps are cheaper than 48-byte ones.
	order := make([]int32, len(entries))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return bytes.Compare(entries[a].Key, entries[b].Key) })
	sorted := sortedEntries{entries, order}
	for i := range order {
		en := sorted.at(i)
		if len(en.Key) == 0 || len(en.Key) > MaxKeySize {
			return nil, fmt.Errorf("lmdb: encode: key %q: length %d not in 1..%d", en.Key, len(en.Key), MaxKeySize)
		}
		if uint64(len(en.Value)) > 0xffffffff {
			return nil, fmt.Errorf("lmdb: encode: key %q: value of %d bytes exceeds 4 GiB", en.Key, len(en.Value))
		}
		if i > 0 && bytes.Equal(sorted.at(i-1).Key, en.Key) {
			return nil, &DuplicateKeyError{Key: en.Key}
		}
	}
	e := &encoder{bo: binary.NativeEndian, out: make([]byte, 2*PageSize, 2*PageSize+estimate(entries))}
	e.db.root = invalidPgno
	if len(entries) > 0 {
		level := e.leaves(sorted)
		e.db.depth = 1
		for len(level) > 1 {
			level = e.branches(level)
			e.db.depth++
		}
		e.db.root = level[0].pgno
		e.db.entries = uint64(len(entries))
	}
	// Meta page 0 is the empty database of transaction 0, meta page 1
	// the data of transaction 1, as liblmdb leaves a fresh file after its
	// first commit; a reader takes the larger transaction id.
	e.meta(0, 0, 1, dbRecord{root: invalidPgno})
	e.meta(1, 1, e.pgno()-1, e.db)
	return e.out, nil
}

// estimate guesses the file size past the meta pages, for one allocation.
func estimate(es []Entry) int {
	n := 0
	for _, e := range es {
		n += even(nodeHdrSize+len(e.Key)+len(e.Value)) + 2
	}
	return n + n/8 + PageSize
}

// sortedEntries reads entries in key order.
type sortedEntries struct {
	entries []Entry
	order   []int32
}

func (s sortedEntries) at(i int) Entry { return s.entries[s.order[i]] }

// leaves writes the leaf pages (and overflow pages for big values) and
// returns the first key and page number of each leaf.
func (e *encoder) leaves(sorted sortedEntries) []child {
	var level []child
	page := make([]byte, PageSize)
	var ptrs []uint16
	upper := PageSize
	flush := func() {
		e.header(page, e.pgno(), flagLeaf, pageHdrSize+2*len(ptrs), upper)
		for i, p := range ptrs {
			e.bo.PutUint16(page[pageHdrSize+2*i:], p)
		}
		e.out = append(e.out, page...)
		e.db.leaves++
		clear(page)
		ptrs, upper = ptrs[:0], PageSize
	}
	first := 0 // index in sorted of the current leaf's first key
	for i := range sorted.order {
		en := sorted.at(i)
		size := nodeHdrSize + len(en.Key) + len(en.Value)
		big := size > nodeMax(PageSize)
		if big {
			size = nodeHdrSize + len(en.Key) + 8
		}
		size = even(size)
		if pageHdrSize+2*(len(ptrs)+1) > upper-size {
			level = append(level, child{key: sorted.at(first).Key, pgno: e.pgno()})
			flush()
			first = i
		}
		var ovfl uint64
		if big { // the value goes first, so its pages precede the leaf
			ovfl = e.overflow(en.Value)
		}
		upper -= size
		ptrs = append(ptrs, uint16(upper))
		node := page[upper:]
		e.bo.PutUint16(node[0:], uint16(len(en.Value)))
		e.bo.PutUint16(node[2:], uint16(len(en.Value)>>16))
		e.bo.PutUint16(node[6:], uint16(len(en.Key)))
		copy(node[nodeHdrSize:], en.Key)
		if big {
			e.bo.PutUint16(node[4:], nodeBigData)
			e.bo.PutUint64(node[nodeHdrSize+len(en.Key):], ovfl)
		} else {
			copy(node[nodeHdrSize+len(en.Key):], en.Value)
		}
	}
	level = append(level, child{key: sorted.at(first).Key, pgno: e.pgno()})
	flush()
	return level
}

// overflow writes value on consecutive overflow pages and returns the
// first one's number.
func (e *encoder) overflow(value []byte) uint64 {
	pgno := e.pgno()
	n := (pageHdrSize + len(value) + PageSize - 1) / PageSize
	start := len(e.out)
	e.out = append(e.out, make([]byte, n*PageSize)...)
	p := e.out[start:]
	e.bo.PutUint64(p[0:], pgno)
	e.bo.PutUint16(p[10:], flagOverflow)
	e.bo.PutUint32(p[12:], uint32(n))
	copy(p[pageHdrSize:], value)
	e.db.overflow += uint64(n)
	return pgno
}

// branches writes one level of branch pages over children and returns
// the level above.
func (e *encoder) branches(children []child) []child {
	// Group children into pages greedily; a page's first node has an
	// empty key.
	var groups [][]child
	start, used := 0, pageHdrSize
	for i, c := range children {
		size := even(nodeHdrSize + len(c.key))
		if i == start {
			size = nodeHdrSize
		}
		if i > start && used+2+size > PageSize {
			groups = append(groups, children[start:i])
			start, used, size = i, pageHdrSize, nodeHdrSize
		}
		used += 2 + size
	}
	groups = append(groups, children[start:])
	// A branch page with one child would be legal but unusual: lend it
	// one from its neighbour (whose page then has room to spare).
	if n := len(groups); n > 1 && len(groups[n-1]) == 1 {
		prev := groups[n-2]
		groups[n-2] = prev[:len(prev)-1]
		groups[n-1] = children[len(children)-2:]
	}
	var level []child
	page := make([]byte, PageSize)
	for _, g := range groups {
		upper := PageSize
		for i, c := range g {
			key := c.key
			if i == 0 {
				key = nil
			}
			upper -= even(nodeHdrSize + len(key))
			node := page[upper:]
			e.bo.PutUint16(node[0:], uint16(c.pgno))
			e.bo.PutUint16(node[2:], uint16(c.pgno>>16))
			e.bo.PutUint16(node[4:], uint16(c.pgno>>32))
			e.bo.PutUint16(node[6:], uint16(len(key)))
			copy(node[nodeHdrSize:], key)
			e.bo.PutUint16(page[pageHdrSize+2*i:], uint16(upper))
		}
		level = append(level, child{key: g[0].key, pgno: e.pgno()})
		e.header(page, e.pgno(), flagBranch, pageHdrSize+2*len(g), upper)
		e.out = append(e.out, page...)
		e.db.branches++
		clear(page)
	}
	return level
}

// header fills a branch or leaf page's header.
func (e *encoder) header(page []byte, pgno uint64, flags uint16, lower, upper int) {
	e.bo.PutUint64(page[0:], pgno)
	e.bo.PutUint16(page[10:], flags)
	e.bo.PutUint16(page[12:], uint16(lower))
	e.bo.PutUint16(page[14:], uint16(upper))
}

// meta fills meta page pgno (0 or 1) for transaction txnid with main as
// the main database and last as the last page in use.
func (e *encoder) meta(pgno, txnid, last uint64, main dbRecord) {
	p := e.out[pgno*PageSize : (pgno+1)*PageSize]
	clear(p)
	e.bo.PutUint64(p[0:], pgno)
	e.bo.PutUint16(p[10:], flagMeta)
	e.bo.PutUint32(p[metaMagic:], magic)
	e.bo.PutUint32(p[metaVersion:], dataVersion)
	e.bo.PutUint64(p[metaMapSize:], uint64(max(minMapSize, len(e.out))))
	free := dbRecord{pad: PageSize, flags: envFlags, root: invalidPgno}
	free.put(e.bo, p[metaFreeDB:])
	main.put(e.bo, p[metaMainDB:])
	e.bo.PutUint64(p[metaLastPage:], last)
	e.bo.PutUint64(p[metaTxnID:], txnid)
}
