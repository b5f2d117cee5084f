package accessdb

import (
	"bytes"
	"encoding/binary"
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

func encode185(entries []Entry, bo binary.ByteOrder) ([]byte, error) {
	total := 0
	for i := range entries {
		e := &entries[i]
		if !pairFits185(pageSize-6, e) {
			return nil, fmt.Errorf("accessdb: hash185: pair with key %.40q is %d bytes, too large for a %d-byte page (big pairs are not written)", e.Key, len(e.Key)+len(e.Value), pageSize)
		}
		total += 4 + len(e.Key) + len(e.Value)
	}
	const room = pageSize - 10
	l2 := max(log2Ceil(uint32(float64(total)/(room*targetFill))+1), 1)
	for ; l2 < 31; l2++ {
		if out, ok, err := try185(entries, l2, bo); err != nil || ok {
			return out, err
		}
	}
	return nil, fmt.Errorf("accessdb: hash185: too many overflow pages")
}

// try185 lays the map out with 1<<l2 buckets. It reports false when more
// overflow pages are needed than one split point can address.
func try185(entries []Entry, l2 uint32, bo binary.ByteOrder) ([]byte, bool, error) {
	nbuckets := uint32(1) << l2
	start, order, err := bucketPlan(entries, nbuckets, hashFunc4, bytes.Compare)
	if err != nil {
		return nil, false, err
	}
	// Page 0 is the header, buckets are pages 1..nbuckets, overflow address
	// (l2, 1) is the bitmap page and (l2, k>=2) the overflow pages after it.
	buf := make([]byte, (int(nbuckets)+2)*pageSize, (int(nbuckets)+2)*pageSize*9/8)
	novfl := 0
	newPage := func(pg int) *page185 {
		d := buf[pg*pageSize : (pg+1)*pageSize]
		return &page185{d: d, bo: bo, off: pageSize, size: pageSize}
	}
	for b := range nbuckets {
		p := newPage(int(b) + 1)
		for _, ix := range order[start[b]:start[b+1]] {
			e := &entries[ix]
			if !pairFits185(p.free(), e) {
				novfl++
				if novfl+1 > splitMask185 {
					return nil, false, nil
				}
				p.link(uint16(l2<<splitShift185 | uint32(novfl+1)))
				p.finish()
				buf = append(buf, make([]byte, pageSize)...)
				p = newPage(int(nbuckets) + 1 + novfl)
			}
			p.put(e.Key, e.Value)
		}
		p.finish()
	}
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
	return buf, true, nil
}
