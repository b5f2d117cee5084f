package accessdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// pairFits185 is DB 1.85's PAIRFITS: the pair's two offsets and bytes, plus
// room for an overflow link, must fit the free space.
func pairFits185(free int, e *Entry) bool {
	return 4+len(e.Key)+len(e.Value)+4 <= free
}

// page185 builds one DB 1.85 page.
type page185 struct {
	d    []byte
	bo   binary.ByteOrder
	n    int // offsets in use
	off  int // start of the data area
	size int
}

func (p *page185) free() int { return p.off - (p.n+3)*2 }

func (p *page185) put(k, v []byte) {
	p.off -= len(k)
	copy(p.d[p.off:], k)
	p.bo.PutUint16(p.d[2*(p.n+1):], uint16(p.off))
	p.off -= len(v)
	copy(p.d[p.off:], v)
	p.bo.PutUint16(p.d[2*(p.n+2):], uint16(p.off))
	p.n += 2
}

func (p *page185) link(oaddr uint16) {
	p.bo.PutUint16(p.d[2*(p.n+1):], oaddr)
	p.bo.PutUint16(p.d[2*(p.n+2):], ovflPage185)
	p.n += 2
}

func (p *page185) finish() {
	p.bo.PutUint16(p.d, uint16(p.n))
	p.bo.PutUint16(p.d[2*(p.n+1):], uint16(p.free()))
	p.bo.PutUint16(p.d[2*(p.n+2):], uint16(p.off))
}

func (p *page185) set(i, v int) { p.bo.PutUint16(p.d[2*i:], uint16(v)) }

// bigPair185 reports whether a pair cannot sit on a page with other pairs
// and goes to a chain of pages of its own (DB 1.85's __big_insert).
func bigPair185(e *Entry) bool { return !pairFits185(pageSize-6, e) }

// errTooManyOverflow185 asks for a layout with more buckets.
var errTooManyOverflow185 = errors.New("accessdb: hash185: too many overflow pages for one split point")

func encode185(entries []Entry, bo binary.ByteOrder) ([]byte, error) {
	total := 0
	for i := range entries {
		e := &entries[i]
		if bigPair185(e) && len(e.Key) == 0 {
			return nil, fmt.Errorf("accessdb: hash185: an empty key with a %d-byte value does not fit a %d-byte page", len(e.Value), pageSize)
		}
		total += 4 + len(e.Key) + len(e.Value)
	}
	const room = pageSize - 10
	l2 := max(log2Ceil(uint32(float64(total)/(room*targetFill))+1), 1)
	for ; l2 < 24; l2++ {
		out, err := try185(entries, l2, bo)
		if !errors.Is(err, errTooManyOverflow185) {
			return out, err
		}
	}
	return nil, errTooManyOverflow185
}

// layout185 appends the pages of one DB 1.85 file.
type layout185 struct {
	pages    [][]byte // separate slices, so a page stays valid while others are added
	bo       binary.ByteOrder
	l2       uint32
	nbuckets uint32
	novfl    int
}

func (l *layout185) pageAt(pg int) *page185 {
	return &page185{d: l.pages[pg], bo: l.bo, off: pageSize, size: pageSize}
}

// newOverflow allocates the next overflow page: address (l2, k) for k>=2
// (k=1 is the bitmap page) is page nbuckets+k.
func (l *layout185) newOverflow() (*page185, uint16, error) {
	l.novfl++
	if l.novfl+1 > splitMask185 {
		return nil, 0, errTooManyOverflow185
	}
	l.pages = append(l.pages, make([]byte, pageSize))
	return l.pageAt(int(l.nbuckets) + 1 + l.novfl), uint16(l.l2<<splitShift185 | uint32(l.novfl+1)), nil
}

// linkNew appends an overflow link to p (DB 1.85's __add_ovflpage),
// finishes p and returns the new page.
func (l *layout185) linkNew(p *page185) (*page185, error) {
	q, addr, err := l.newOverflow()
	if err != nil {
		return nil, err
	}
	p.link(addr)
	p.finish()
	return q, nil
}

// putBig writes a big pair onto the fresh page p exactly as DB 1.85's
// __big_insert does and returns the page the bucket continues on.
func (l *layout185) putBig(p *page185, e *Entry) (*page185, error) {
	key, val := e.Key, e.Value
	const bigOverhead = 8 // BIGOVERHEAD
	var err error
	for len(key) > 0 {
		move := min(p.free()-bigOverhead, len(key))
		p.off -= move
		copy(p.d[p.off:], key[:move])
		key = key[move:]
		p.set(1, p.off)
		p.n = 2
		p.set(2, partialKey185)
		cur := p
		if p, err = l.linkNew(cur); err != nil {
			return nil, err
		}
		if len(key) > 0 {
			continue
		}
		space := cur.free()
		if space > 0 && space != len(val) {
			move := min(space, len(val))
			cur.off -= move
			copy(cur.d[cur.off:], val[:move])
			val = val[move:]
			cur.set(4, cur.off)
			cur.set(2, fullKeyData)
		} else {
			cur.set(2, fullKey185)
		}
		cur.finish()
	}
	whole := len(val)
	for len(val) > 0 {
		space := p.free() - bigOverhead
		move := min(space, len(val))
		if space == len(val) && len(val) == whole {
			move-- // keep a free byte: it marks data that ends on this page
		}
		p.off -= move
		copy(p.d[p.off:], val[:move])
		val = val[move:]
		p.set(1, p.off)
		p.n = 2
		if len(val) == 0 {
			p.set(2, fullKeyData)
			break
		}
		p.set(2, fullKey185)
		if p, err = l.linkNew(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// try185 lays the map out with 1<<l2 buckets: page 0 is the header,
// buckets are pages 1..nbuckets, overflow address (l2, 1) is the bitmap
// page and (l2, k>=2) the overflow pages after it. In each bucket the
// ordinary pairs come first, then the big pairs, each on its own chain of
// pages linked the way DB 1.85's __addel links them.
func try185(entries []Entry, l2 uint32, bo binary.ByteOrder) ([]byte, error) {
	nbuckets := uint32(1) << l2
	start, order, err := bucketPlan(entries, nbuckets, hashFunc4, bytes.Compare)
	if err != nil {
		return nil, err
	}
	fixed := make([]byte, (int(nbuckets)+2)*pageSize) // header, buckets, bitmap
	l := &layout185{bo: bo, l2: l2, nbuckets: nbuckets}
	for pg := range int(nbuckets) + 2 {
		l.pages = append(l.pages, fixed[pg*pageSize:(pg+1)*pageSize:(pg+1)*pageSize])
	}
	var bigs []*Entry
	for b := range nbuckets {
		p := l.pageAt(int(b) + 1)
		bigs = bigs[:0]
		for _, ix := range order[start[b]:start[b+1]] {
			e := &entries[ix]
			if bigPair185(e) {
				bigs = append(bigs, e)
				continue
			}
			if !pairFits185(p.free(), e) {
				if p, err = l.linkNew(p); err != nil {
					return nil, err
				}
			}
			p.put(e.Key, e.Value)
		}
		for _, e := range bigs {
			if p, err = l.linkNew(p); err != nil {
				return nil, err
			}
			if p, err = l.putBig(p, e); err != nil {
				return nil, err
			}
		}
		p.finish()
	}
	buf := make([]byte, 0, len(l.pages)*pageSize)
	for _, pg := range l.pages {
		buf = append(buf, pg...)
	}
	novfl := l.novfl
	bitmap := buf[(nbuckets+1)*pageSize : (nbuckets+2)*pageSize]
	for i := range bitmap {
		bitmap[i] = 0xFF // every overflow page up to spares[l2] is in use
	}
	nkeys := uint32(len(entries))
	ffactor := uint32(defFFactor185)
	if nkeys > 0 {
		ffactor = max(minFFactor185, nkeys/nbuckets+1)
	}
	nsegs := uint32(1) << log2Ceil((nbuckets-1)/defSegSize185+1)
	be := binary.BigEndian
	h := buf[:hdrSize185]
	be.PutUint32(h[0:], hashMagic)
	be.PutUint32(h[4:], version185)
	lorder := uint32(lorderLittle)
	if bo == binary.ByteOrder(binary.BigEndian) {
		lorder = lorderBig
	}
	be.PutUint32(h[8:], lorder)
	be.PutUint32(h[12:], pageSize)
	be.PutUint32(h[16:], 12) // bshift
	be.PutUint32(h[20:], max(defDirSize185, nsegs))
	be.PutUint32(h[24:], defSegSize185)
	be.PutUint32(h[28:], 8) // sshift
	be.PutUint32(h[32:], l2)
	be.PutUint32(h[36:], 2) // last_freed: where the next free-page search starts
	be.PutUint32(h[h185MaxBucket:], nbuckets-1)
	be.PutUint32(h[h185HighMask:], 2*nbuckets-1)
	be.PutUint32(h[h185LowMask:], nbuckets-1)
	be.PutUint32(h[52:], ffactor)
	be.PutUint32(h[56:], nkeys)
	be.PutUint32(h[60:], 1) // hdrpages
	be.PutUint32(h[h185CharKey:], hashFunc4([]byte(charKey)))
	be.PutUint32(h[h185Spares+4*l2:], uint32(novfl)+1)
	be.PutUint32(h[h185Spares+4*(l2+1):], uint32(novfl)+1)
	be.PutUint16(h[h185Bitmaps:], uint16(l2<<splitShift185|1))
	return buf, nil
}
