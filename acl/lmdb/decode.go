package lmdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// maxDepth bounds the tree walk; liblmdb's cursor stack holds 32 levels.
const maxDepth = 32

// Map is a decoded LMDB file. It keeps the file's bytes and answers Get
// by a search down the B+tree, as mdb_get does.
type Map struct {
	data    []byte
	bo      binary.ByteOrder
	psize   int
	db      dbRecord
	entries []Entry
}

// Decode parses an LMDB file written in this machine's byte order: it
// picks the newer valid meta page, then walks the main database's tree,
// checking every page, node and overflow run, that keys ascend, and the
// page and entry counts against the meta page. A violation is a
// *CorruptError; named sub-databases and duplicate-key databases, which
// Postfix never writes, are errors too.
func Decode(data []byte) (*Map, error) {
	bo := binary.NativeEndian
	m := &Map{data: data, bo: bo}
	meta, err := m.pickMeta()
	if err != nil {
		return nil, err
	}
	m.db = meta
	if m.db.flags != 0 {
		return nil, fmt.Errorf("lmdb: main database flags %#x (sorted duplicates or integer keys) not supported", m.db.flags)
	}
	if m.db.root == invalidPgno {
		if m.db.entries != 0 || m.db.depth != 0 {
			return nil, corruptf(metaMainDB, "empty tree with %d entries, depth %d", m.db.entries, m.db.depth)
		}
		return m, nil
	}
	if m.db.depth == 0 || m.db.depth > maxDepth {
		return nil, corruptf(metaMainDB, "tree depth %d not in 1..%d", m.db.depth, maxDepth)
	}
	w := walker{m: m, seen: make(map[uint64]bool)}
	if err := w.walk(m.db.root, 1); err != nil {
		return nil, err
	}
	if w.leaves != m.db.leaves || w.branches != m.db.branches || w.overflow != m.db.overflow || uint64(len(m.entries)) != m.db.entries {
		return nil, corruptf(metaMainDB, "meta counts %d leaf, %d branch, %d overflow pages, %d entries; tree has %d, %d, %d, %d",
			m.db.leaves, m.db.branches, m.db.overflow, m.db.entries, w.leaves, w.branches, w.overflow, len(m.entries))
	}
	return m, nil
}

// pickMeta reads meta pages 0 and 1 and returns the main database record
// of the valid one with the larger transaction id.
func (m *Map) pickMeta() (dbRecord, error) {
	if len(m.data) < pageHdrSize+metaTxnID+8 {
		return dbRecord{}, corruptf(0, "file of %d bytes is too short for a meta page", len(m.data))
	}
	first, err := m.readMeta(0)
	if err != nil {
		return dbRecord{}, err
	}
	m.psize = first.psize
	// liblmdb refuses a file unless both meta pages are valid.
	second, err := m.readMeta(int64(m.psize))
	if err != nil {
		return dbRecord{}, err
	}
	best := first
	if second.txnid > first.txnid {
		best = second
	}
	if best.last >= uint64(len(m.data)/m.psize) {
		return dbRecord{}, corruptf(0, "last page %d beyond the file's %d pages", best.last, len(m.data)/m.psize)
	}
	return best.main, nil
}

type metaPage struct {
	psize       int
	main        dbRecord
	last, txnid uint64
}

func (m *Map) readMeta(off int64) (metaPage, error) {
	if off+metaTxnID+8 > int64(len(m.data)) {
		return metaPage{}, corruptf(off, "meta page cut short")
	}
	p := m.data[off:]
	if m.bo.Uint16(p[10:])&flagMeta == 0 {
		return metaPage{}, corruptf(off+10, "not a meta page (flags %#x)", m.bo.Uint16(p[10:]))
	}
	if mg := m.bo.Uint32(p[metaMagic:]); mg != magic {
		if mg == (magic>>24 | magic>>8&0xff00 | magic<<8&0xff0000 | magic<<24&0xff000000) {
			return metaPage{}, corruptf(off+metaMagic, "written on a machine of the other byte order (LMDB files are not portable)")
		}
		return metaPage{}, corruptf(off+metaMagic, "bad magic %#x: not an LMDB file", mg)
	}
	if v := m.bo.Uint32(p[metaVersion:]); v != dataVersion {
		return metaPage{}, corruptf(off+metaVersion, "format version %d, want %d", v, dataVersion)
	}
	free := getDBRecord(m.bo, p[metaFreeDB:])
	psize := int(free.pad)
	if psize < 512 || psize > 65536 || psize&(psize-1) != 0 {
		return metaPage{}, corruptf(off+metaFreeDB, "page size %d", psize)
	}
	if m.psize != 0 && psize != m.psize {
		return metaPage{}, corruptf(off+metaFreeDB, "page size %d differs from meta page 0's %d", psize, m.psize)
	}
	return metaPage{psize: psize, main: getDBRecord(m.bo, p[metaMainDB:]),
		last: m.bo.Uint64(p[metaLastPage:]), txnid: m.bo.Uint64(p[metaTxnID:])}, nil
}

// page returns page pgno after checking that it lies in the file.
func (m *Map) page(pgno uint64, from int64) ([]byte, error) {
	if pgno < 2 || pgno >= uint64(len(m.data)/m.psize) {
		return nil, corruptf(from, "page %d outside the file", pgno)
	}
	p := m.data[pgno*uint64(m.psize) : (pgno+1)*uint64(m.psize)]
	if got := m.bo.Uint64(p); got != pgno {
		return nil, corruptf(int64(pgno)*int64(m.psize), "page %d says it is page %d", pgno, got)
	}
	return p, nil
}

// node is one decoded node of a branch or leaf page.
type node struct {
	key   []byte
	value []byte // leaf: the value (read from overflow pages if big)
	child uint64 // branch: the child page
	big   uint64 // leaf: overflow pages used
}

// nodes decodes the nodes of a branch or leaf page.
func (m *Map) nodes(p []byte, pgno uint64, leaf bool) ([]node, error) {
	base := int64(pgno) * int64(m.psize)
	lower, upper := int(m.bo.Uint16(p[12:])), int(m.bo.Uint16(p[14:]))
	if lower < pageHdrSize || lower&1 != 0 || lower > upper || upper > m.psize {
		return nil, corruptf(base+12, "free space bounds %d..%d", lower, upper)
	}
	n := (lower - pageHdrSize) / 2
	if n == 0 {
		return nil, corruptf(base+12, "page %d has no nodes", pgno)
	}
	out := make([]node, n)
	for i := range out {
		off := int(m.bo.Uint16(p[pageHdrSize+2*i:]))
		if off < upper || off+nodeHdrSize > m.psize {
			return nil, corruptf(base+int64(pageHdrSize+2*i), "node offset %d outside %d..%d", off, upper, m.psize)
		}
		nd := p[off:]
		lo, hi, flags, ksize := m.bo.Uint16(nd[0:]), m.bo.Uint16(nd[2:]), m.bo.Uint16(nd[4:]), int(m.bo.Uint16(nd[6:]))
		if off+nodeHdrSize+ksize > m.psize {
			return nil, corruptf(base+int64(off), "key of %d bytes runs past the page", ksize)
		}
		out[i].key = nd[nodeHdrSize : nodeHdrSize+ksize : nodeHdrSize+ksize]
		if !leaf {
			out[i].child = uint64(lo) | uint64(hi)<<16 | uint64(flags)<<32
			continue
		}
		if ksize == 0 {
			return nil, corruptf(base+int64(off), "empty key in a leaf")
		}
		dsize := int(lo) | int(hi)<<16
		dstart := off + nodeHdrSize + ksize
		switch flags {
		case 0:
			if dstart+dsize > m.psize {
				return nil, corruptf(base+int64(off), "value of %d bytes runs past the page", dsize)
			}
			out[i].value = p[dstart : dstart+dsize : dstart+dsize]
		case nodeBigData:
			if dstart+8 > m.psize {
				return nil, corruptf(base+int64(off), "overflow page number runs past the page")
			}
			v, pages, err := m.overflowValue(m.bo.Uint64(p[dstart:]), dsize, base+int64(dstart))
			if err != nil {
				return nil, err
			}
			out[i].value, out[i].big = v, pages
		default:
			if flags&(nodeSubData|nodeDupData) != 0 {
				return nil, fmt.Errorf("lmdb: page %d: sub-databases and duplicate keys are not supported", pgno)
			}
			return nil, corruptf(base+int64(off+4), "node flags %#x", flags)
		}
	}
	return out, nil
}

// overflowValue reads a value of size bytes from the overflow run at pgno.
func (m *Map) overflowValue(pgno uint64, size int, from int64) ([]byte, uint64, error) {
	p, err := m.page(pgno, from)
	if err != nil {
		return nil, 0, err
	}
	if m.bo.Uint16(p[10:])&flagOverflow == 0 {
		return nil, 0, corruptf(int64(pgno)*int64(m.psize), "page %d is not an overflow page", pgno)
	}
	pages := uint64(m.bo.Uint32(p[12:]))
	need := uint64(pageHdrSize+size+m.psize-1) / uint64(m.psize)
	if pages < need || pgno+pages > uint64(len(m.data)/m.psize) {
		return nil, 0, corruptf(int64(pgno)*int64(m.psize)+12, "overflow run of %d pages for %d bytes", pages, size)
	}
	start := pgno*uint64(m.psize) + pageHdrSize
	return m.data[start : start+uint64(size) : start+uint64(size)], pages, nil
}

// walker walks the tree once, in key order, collecting entries.
type walker struct {
	m                          *Map
	seen                       map[uint64]bool
	leaves, branches, overflow uint64
	last                       []byte
}

func (w *walker) walk(pgno uint64, depth uint16) error {
	m := w.m
	if w.seen[pgno] {
		return corruptf(int64(pgno)*int64(m.psize), "page %d reached twice", pgno)
	}
	w.seen[pgno] = true
	p, err := m.page(pgno, metaMainDB)
	if err != nil {
		return err
	}
	leaf := depth == m.db.depth
	want := uint16(flagBranch)
	if leaf {
		want = flagLeaf
	}
	if flags := m.bo.Uint16(p[10:]); flags&(flagBranch|flagLeaf|flagOverflow|flagMeta) != want {
		return corruptf(int64(pgno)*int64(m.psize)+10, "page %d at depth %d of %d has flags %#x", pgno, depth, m.db.depth, flags)
	}
	nodes, err := m.nodes(p, pgno, leaf)
	if err != nil {
		return err
	}
	if !leaf {
		w.branches++
		for i, n := range nodes {
			// Keys under node i lie in [key(i), key(i+1)): what Get
			// relies on to pick the child.
			if i > 0 && w.last != nil && bytes.Compare(w.last, n.key) >= 0 {
				return corruptf(int64(pgno)*int64(m.psize), "branch key %q not above the keys before it", n.key)
			}
			before := len(m.entries)
			if err := w.walk(n.child, depth+1); err != nil {
				return err
			}
			if i > 0 && len(m.entries) > before && bytes.Compare(m.entries[before].Key, n.key) < 0 {
				return corruptf(int64(pgno)*int64(m.psize), "branch key %q above its first key %q", n.key, m.entries[before].Key)
			}
		}
		return nil
	}
	w.leaves++
	for _, n := range nodes {
		if w.last != nil && bytes.Compare(w.last, n.key) >= 0 {
			return corruptf(int64(pgno)*int64(m.psize), "key %q after %q: keys out of order", n.key, w.last)
		}
		w.last = n.key
		w.overflow += n.big
		m.entries = append(m.entries, Entry{Key: n.key, Value: n.value})
	}
	return nil
}

// Get searches key down the tree as mdb_get does: in a branch page, the
// last node whose key is not above key (the first node standing for
// everything below the second); in the leaf, an exact match. Decode has
// checked every page on the way, so Get reads nodes in place.
func (m *Map) Get(key []byte) ([]byte, bool) {
	if m.db.root == invalidPgno {
		return nil, false
	}
	pgno := m.db.root
	for depth := uint16(1); ; depth++ {
		p := m.data[pgno*uint64(m.psize) : (pgno+1)*uint64(m.psize)]
		n := (int(m.bo.Uint16(p[12:])) - pageHdrSize) / 2
		if depth == m.db.depth {
			i, found := m.search(p, 0, n, key)
			if !found {
				return nil, false
			}
			off := int(m.bo.Uint16(p[pageHdrSize+2*i:]))
			nd := p[off:]
			dsize := int(m.bo.Uint16(nd[0:])) | int(m.bo.Uint16(nd[2:]))<<16
			dstart := nodeHdrSize + int(m.bo.Uint16(nd[6:]))
			if m.bo.Uint16(nd[4:]) == nodeBigData {
				start := m.bo.Uint64(nd[dstart:])*uint64(m.psize) + pageHdrSize
				return m.data[start : start+uint64(dsize) : start+uint64(dsize)], true
			}
			return nd[dstart : dstart+dsize : dstart+dsize], true
		}
		// The largest i >= 1 with key(i) <= key, else 0: the first index
		// whose key is above, minus one.
		i, found := m.search(p, 1, n, key)
		if !found {
			i--
		}
		nd := p[m.bo.Uint16(p[pageHdrSize+2*i:]):]
		pgno = uint64(m.bo.Uint16(nd[0:])) | uint64(m.bo.Uint16(nd[2:]))<<16 | uint64(m.bo.Uint16(nd[4:]))<<32
	}
}

// search binary-searches the nodes lo..hi-1 of page p for key: the index
// of the node with that key, or of the first node with a greater one.
func (m *Map) search(p []byte, lo, hi int, key []byte) (int, bool) {
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		off := int(m.bo.Uint16(p[pageHdrSize+2*mid:]))
		k := p[off+nodeHdrSize : off+nodeHdrSize+int(m.bo.Uint16(p[off+6:]))]
		switch c := bytes.Compare(k, key); {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return lo, false
}

// Entries returns every pair in key order.
func (m *Map) Entries() []Entry { return m.entries }
