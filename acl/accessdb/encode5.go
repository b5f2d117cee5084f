package accessdb

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// targetFill is the share of a bucket page the encoder plans to use on
// average; the rest absorbs uneven hashing so that few buckets need a
// second page.
const targetFill = 0.8

// bigItem5 is libdb's ISBIG: an item longer than a quarter page goes to
// overflow pages.
func bigItem5(n int) bool { return n > pageSize/4 }

// itemSize5 is the on-page size of a key or data item of n bytes.
func itemSize5(n int) int {
	if bigItem5(n) {
		return hOffPageSize
	}
	return 1 + n
}

// pairSize5 is what one pair takes on a page, index slots included.
func pairSize5(e *Entry) int { return 4 + itemSize5(len(e.Key)) + itemSize5(len(e.Value)) }

// compareKeys5 is the order libdb 5.3 keeps keys in on a sorted hash page,
// measured with db5.3_load: bytes compare as with memcmp, but when one key
// is a prefix of the other, an on-page key sorts after its longer
// extensions (as if libdb's on-page comparison returned item length minus
// key length) while an off-page key sorts before them (__db_moff). Put as
// terminators: on-page keys end in a mark above every byte, off-page keys
// in one below every byte. The one pair this order cannot serve, an on-page
// key that is a prefix of an off-page key, is kept off the same page by
// encode5.
func compareKeys5(a, b []byte) int {
	n := min(len(a), len(b))
	if c := bytes.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	return terminator5(a, n) - terminator5(b, n)
}

// terminator5 is the sort weight of key k at position n: its byte, or the
// end mark for its kind.
func terminator5(k []byte, n int) int {
	switch {
	case n < len(k):
		return int(k[n])
	case bigItem5(len(k)):
		return -1
	}
	return 256
}

// bucketPlan groups entries by bucket for nbuckets buckets (a power of
// two), each bucket's keys sorted by cmp, and rejects duplicate keys.
func bucketPlan(entries []Entry, nbuckets uint32, hash func([]byte) uint32, cmp func(a, b []byte) int) ([]uint32, []int32, error) {
	mask := nbuckets - 1
	bucket := make([]uint32, len(entries))
	start := make([]uint32, nbuckets+1)
	for i := range entries {
		b := hash(entries[i].Key) & mask
		bucket[i] = b
		start[b+1]++
	}
	for b := uint32(1); b <= nbuckets; b++ {
		start[b] += start[b-1]
	}
	order := make([]int32, len(entries))
	fill := slices.Clone(start[:nbuckets])
	for i, b := range bucket {
		order[fill[b]] = int32(i)
		fill[b]++
	}
	for b := uint32(0); b < nbuckets; b++ {
		idx := order[start[b]:start[b+1]]
		slices.SortFunc(idx, func(x, y int32) int { return cmp(entries[x].Key, entries[y].Key) })
		for j := 1; j < len(idx); j++ {
			if bytes.Equal(entries[idx[j-1]].Key, entries[idx[j]].Key) {
				return nil, nil, &DuplicateKeyError{Key: entries[idx[j]].Key}
			}
		}
	}
	return start, order, nil
}

// encoder5 appends pages to a growing file image.
type encoder5 struct {
	bo  binary.ByteOrder
	buf []byte
}

func (e *encoder5) npages() uint32 { return uint32(len(e.buf) / pageSize) }

// newPage appends a zeroed page with its header filled in and returns its
// number.
func (e *encoder5) newPage(typ byte) uint32 {
	pg := e.npages()
	e.buf = append(e.buf, make([]byte, pageSize)...)
	e.initPage(pg, typ)
	return pg
}

func (e *encoder5) initPage(pg uint32, typ byte) {
	d := e.page(pg)
	e.bo.PutUint32(d[4:], 1) // LSN [0][1]: not logged, as makemap writes
	e.bo.PutUint32(d[8:], pg)
	if typ == pTypeHash {
		e.bo.PutUint16(d[22:], pageSize)
	}
	d[25] = typ
}

func (e *encoder5) page(pg uint32) []byte {
	return e.buf[int(pg)*pageSize : int(pg+1)*pageSize]
}

// putOverflow writes b onto a fresh overflow chain and returns its first page.
func (e *encoder5) putOverflow(b []byte) uint32 {
	const room = pageSize - pageHeaderSize
	first, prev := uint32(0), uint32(0)
	for len(b) > 0 {
		n := min(len(b), room)
		pg := e.newPage(pTypeOverflow)
		d := e.page(pg)
		e.bo.PutUint32(d[12:], prev)
		e.bo.PutUint16(d[20:], 1) // OV_REF
		e.bo.PutUint16(d[22:], uint16(n))
		copy(d[pageHeaderSize:], b[:n])
		if prev != 0 {
			e.bo.PutUint32(e.page(prev)[16:], pg)
		} else {
			first = pg
		}
		prev = pg
		b = b[n:]
	}
	return first
}

// putItem stores one item below *hf on page pg and records it in index slot i.
func (e *encoder5) putItem(pg uint32, i int, hf *int, b []byte) {
	if bigItem5(len(b)) {
		ov := e.putOverflow(b)
		d := e.page(pg)
		*hf -= hOffPageSize
		d[*hf] = hOffPage
		e.bo.PutUint32(d[*hf+4:], ov)
		e.bo.PutUint32(d[*hf+8:], uint32(len(b)))
	} else {
		d := e.page(pg)
		*hf -= 1 + len(b)
		d[*hf] = hKeyData
		copy(d[*hf+1:], b)
	}
	e.bo.PutUint16(e.page(pg)[pageHeaderSize+2*i:], uint16(*hf))
}

func encode5(entries []Entry, bo binary.ByteOrder) ([]byte, error) {
	total := 0
	for i := range entries {
		total += pairSize5(&entries[i])
	}
	const room = pageSize - pageHeaderSize
	want := uint32(float64(total)/(room*targetFill)) + 1
	l2 := max(log2Ceil(want), 1)
	nbuckets := uint32(1) << l2
	start, order, err := bucketPlan(entries, nbuckets, hashFunc5, compareKeys5)
	if err != nil {
		return nil, err
	}
	e := &encoder5{bo: bo, buf: make([]byte, 0, (int(nbuckets)+1+total/room)*pageSize*5/4)}
	e.newPage(pTypeHashMeta)
	for range nbuckets {
		e.newPage(pTypeHash)
	}
	for b := range nbuckets {
		pg := b + 1
		n, hf := 0, pageSize
		var bigKeys [][]byte // off-page keys on the current page
		for _, ix := range order[start[b]:start[b+1]] {
			en := &entries[ix]
			if sz := pairSize5(en); hf-(pageHeaderSize+2*n) < sz || prefixOfAny(en.Key, bigKeys) {
				d := e.page(pg)
				bo.PutUint16(d[20:], uint16(n))
				bo.PutUint16(d[22:], uint16(hf))
				next := e.newPage(pTypeHash)
				bo.PutUint32(e.page(pg)[16:], next)
				bo.PutUint32(e.page(next)[12:], pg)
				pg, n, hf, bigKeys = next, 0, pageSize, bigKeys[:0]
			}
			if bigItem5(len(en.Key)) {
				bigKeys = append(bigKeys, en.Key)
			}
			e.putItem(pg, n, &hf, en.Key)
			e.putItem(pg, n+1, &hf, en.Value)
			n += 2
		}
		d := e.page(pg)
		bo.PutUint16(d[20:], uint16(n))
		bo.PutUint16(d[22:], uint16(hf))
	}
	e.writeMeta5(nbuckets, l2, uint32(len(entries)))
	return e.buf, nil
}

// prefixOfAny reports whether on-page key k is a proper prefix of one of
// the off-page keys big: libdb could not find both on one page.
func prefixOfAny(k []byte, big [][]byte) bool {
	if bigItem5(len(k)) {
		return false
	}
	for _, b := range big {
		if bytes.HasPrefix(b, k) {
			return true
		}
	}
	return false
}

func (e *encoder5) writeMeta5(nbuckets, l2, nelem uint32) {
	d := e.page(0)
	bo := e.bo
	bo.PutUint32(d[12:], hashMagic)
	bo.PutUint32(d[16:], hashVersion)
	bo.PutUint32(d[20:], pageSize)
	bo.PutUint32(d[32:], e.npages()-1) // last_pgno
	bo.PutUint32(d[metaMaxBucket:], nbuckets-1)
	bo.PutUint32(d[metaHighMask:], nbuckets-1)
	bo.PutUint32(d[metaLowMask:], nbuckets/2-1)
	bo.PutUint32(d[metaNelem:], nelem)
	bo.PutUint32(d[metaCharKey:], hashFunc5([]byte(charKey)))
	for i := uint32(0); i <= l2; i++ {
		bo.PutUint32(d[metaSpares+4*i:], 1) // buckets are pages 1..nbuckets
	}
	// The file id (uid) tells files apart in a shared libdb cache; derive it
	// from the content so that equal input gives an equal file.
	body := e.buf[pageSize:]
	tab := crc32.MakeTable(crc32.Castagnoli)
	bo.PutUint32(d[52:], crc32.Checksum(body, tab))
	bo.PutUint32(d[56:], crc32.Checksum(body[len(body)/2:], tab))
	bo.PutUint32(d[60:], crc32.ChecksumIEEE(body))
	bo.PutUint32(d[64:], uint32(len(body)/pageSize))
	bo.PutUint32(d[68:], nelem)
}
