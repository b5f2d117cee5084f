package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// yescrypt (Alexander Peslyak, PHC special recognition 2015), the "$y$"
// hashes of libxcrypt and so the default of /etc/shadow on Debian 11+,
// Ubuntu 22.04+ and Fedora 35+. Implemented here from its specification,
// the reference implementation yescrypt-ref.c ("a simple human- and
// machine-readable specification"), and checked against hashes made by
// libxcrypt (`mkpasswd -m yescrypt`, Python's crypt.crypt with hand-made
// settings): see yescrypt_test.go and testdata/yescrypt-vectors.tsv.
//
// Only what crypt(3) can produce is supported: classic scrypt (flavor 0),
// YESCRYPT_WORM, and YESCRYPT_RW with the one pwxform flavor the
// specification defines (6 rounds, gather 4, simple 2, 12 KiB S-boxes);
// no ROM (NROM) and no hash upgrades (g), which libxcrypt refuses too.

// Mode and flavor bits of the "flags" parameter (yescrypt.h).
const (
	yescryptWORM        = 0x001
	yescryptRW          = 0x002
	yescryptModeMask    = 0x003
	yescryptFlavorMask  = 0x3fc
	yescryptRWDefaults  = yescryptRW | 0x004 | 0x010 | 0x020 | 0x080 // ROUNDS_6 | GATHER_4 | SIMPLE_2 | SBOX_12K
	yescryptPrehashFlag = 0x10000000
)

// pwxform's fixed parameters for the supported flavor (yescrypt-ref.c).
const (
	pwxSimple = 2
	pwxGather = 4
	pwxRounds = 6
	sWidth    = 8
	pwxBytes  = pwxGather * pwxSimple * 8         // 64: one pwxform block
	pwxWords  = pwxBytes / 4                      // 16
	sBytes    = 3 * (1 << sWidth) * pwxSimple * 8 // 12288: three S-boxes
	sWords    = sBytes / 4
	sMask     = ((1 << sWidth) - 1) * pwxSimple * 8 // byte offset mask into one S-box
	sBoxWords = sWords / 3
)

// Limits on what a stored hash may ask for, so that a damaged or hostile
// line in the users file cannot make one login allocate gigabytes or run
// for minutes. libxcrypt's largest cost (-R 11) is N=2^18, r=32: 1 GiB.
const (
	yescryptMaxNr = 1 << 23 // N*r; 128*N*r bytes = 1 GiB
	yescryptMaxP  = 64
	yescryptMaxT  = 64
)

// yescryptParams are the cost parameters of a "$y$" setting.
type yescryptParams struct {
	flags uint32
	n     uint64
	r, p  uint32
	t     uint32
}

// check applies the specification's parameter rules (yescrypt_kdf_body's
// sanity checks) and this package's limits.
func (yp yescryptParams) check() error {
	switch yp.flags & yescryptModeMask {
	case 0:
		if yp.flags != 0 || yp.t != 0 {
			return fmt.Errorf("classic scrypt flavor takes no t")
		}
	case yescryptWORM:
		if yp.flags != yescryptWORM {
			return fmt.Errorf("unsupported flags %#x", yp.flags)
		}
	case yescryptRW:
		if yp.flags != yescryptRWDefaults {
			return fmt.Errorf("unsupported pwxform flavor %#x", yp.flags)
		}
	default:
		return fmt.Errorf("unsupported flags %#x", yp.flags)
	}
	switch {
	case yp.n < 2 || yp.n&(yp.n-1) != 0:
		return fmt.Errorf("cost N=%d is not a power of 2 above 1", yp.n)
	case yp.r < 1 || yp.p < 1:
		return fmt.Errorf("r=%d p=%d: both must be at least 1", yp.r, yp.p)
	case yp.n > yescryptMaxNr || uint64(yp.r)*yp.n > yescryptMaxNr:
		return fmt.Errorf("cost N=%d r=%d needs more than %d MiB", yp.n, yp.r, yescryptMaxNr*128>>20)
	case yp.p > yescryptMaxP:
		return fmt.Errorf("p=%d above %d", yp.p, yescryptMaxP)
	case yp.t > yescryptMaxT:
		return fmt.Errorf("t=%d above %d", yp.t, yescryptMaxT)
	case yp.flags&yescryptRW != 0 && yp.n/uint64(yp.p) <= 1:
		return fmt.Errorf("cost N/p=%d must be above 1", yp.n/uint64(yp.p))
	}
	return nil
}

// yescryptKDF derives the 32-byte hash of passwd (yescrypt_kdf). With
// YESCRYPT_RW and enough memory it first pre-hashes the password at 1/64
// of the memory, as the specification does to raise the cost of attacks
// that skip the large allocation.
func yescryptKDF(passwd, salt []byte, yp yescryptParams) []byte {
	if yp.flags&yescryptRW != 0 && yp.n/uint64(yp.p) >= 0x100 && yp.n/uint64(yp.p)*uint64(yp.r) >= 0x20000 {
		pre := yp
		pre.flags |= yescryptPrehashFlag
		pre.n >>= 6
		pre.t = 0
		passwd = yescryptBody(passwd, salt, pre)
	}
	return yescryptBody(passwd, salt, yp)
}

// hmacSHA256 is HMAC-SHA256(key, msg).
func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// pbkdf2SHA256 is PBKDF2-HMAC-SHA256 with one iteration, as scrypt uses it.
func pbkdf2SHA256(passwd, salt []byte, n int) []byte {
	out, err := pbkdf2.Key(sha256.New, string(passwd), salt, 1, n)
	if err != nil {
		// Only key lengths beyond (2^32-1)*32 bytes fail; ours are bounded.
		panic("auth: pbkdf2: " + err.Error())
	}
	return out
}

// yescryptBody is yescrypt_kdf_body for a 32-byte output without a ROM.
func yescryptBody(passwd, salt []byte, yp yescryptParams) []byte {
	r, p := int(yp.r), int(yp.p)
	s := 32 * r // words per block B_i
	if yp.flags != 0 {
		key := []byte("yescrypt-prehash")
		if yp.flags&yescryptPrehashFlag == 0 {
			key = key[:8] // "yescrypt"
		}
		passwd = hmacSHA256(key, passwd)
	}
	// 1: (B_0 ... B_{p-1}) <-- PBKDF2(P, S, 1, p * 128r)
	bBytes := pbkdf2SHA256(passwd, salt, 128*r*p)
	b := make([]uint32, s*p)
	for i := range b {
		b[i] = binary.LittleEndian.Uint32(bBytes[4*i:])
	}
	if yp.flags != 0 {
		passwd = append([]byte(nil), bBytes[:32]...)
	}
	v := make([]uint32, uint64(s)*yp.n)
	m := newMixer(r)
	if yp.flags&yescryptRW != 0 {
		passwd = m.smixRW(b, yp, v, passwd)
	} else {
		for i := range p {
			m.smixClassic(b[i*s:(i+1)*s], yp, v)
		}
	}
	for i, w := range b {
		binary.LittleEndian.PutUint32(bBytes[4*i:], w)
	}
	// 5: DK <-- PBKDF2(P, B, 1, dkLen)
	dk := pbkdf2SHA256(passwd, bBytes, 32)
	if yp.flags != 0 && yp.flags&yescryptPrehashFlag == 0 {
		// SCRAM's ClientKey and StoredKey (RFC 5802) on top.
		clientKey := hmacSHA256(dk, []byte("Client Key"))
		sum := sha256.Sum256(clientKey)
		dk = sum[:]
	}
	return dk
}

// pwxCtx is one lane's pwxform state: its three S-boxes (S0, S1, S2,
// rotating after each pwxform) within one sBytes allocation, and the write
// position w in S2 (in 64-bit units).
type pwxCtx struct {
	s0, s1, s2 *[sBoxWords]uint32
	w          uint32
}

// mixer holds the scratch blocks of one KDF run.
type mixer struct {
	r int
	x []uint32 // the block being mixed, in the "SIMD-shuffled" word order
	y []uint32 // BlockMix scratch
}

func newMixer(r int) *mixer {
	return &mixer{r: r, x: make([]uint32, 32*r), y: make([]uint32, 32*r)}
}

// smixClassic is smix with p=1 for classic scrypt and YESCRYPT_WORM: the
// first loop fills V, the second reads it, salsa20/8 throughout.
func (m *mixer) smixClassic(b []uint32, yp yescryptParams, v []uint32) {
	nLoop := yp.n
	if yp.t != 0 {
		if yp.t == 1 {
			nLoop += (nLoop + 1) / 2 // 1.5, rounded up
		}
		nLoop *= uint64(yp.t)
	}
	nLoop = (nLoop + 1) &^ 1 // round up to even
	m.smix1(b, m.r, yp.n, false, v, nil)
	m.smix2(b, m.r, yp.n, nLoop, false, v, nil)
}

// smixRW is smix for YESCRYPT_RW: p lanes share V, each with its own
// S-boxes filled from its block; the password (already replaced by the
// first 32 bytes of B) is HMACed with lane 0's last sub-block, and
// returned.
func (m *mixer) smixRW(b []uint32, yp yescryptParams, v []uint32, passwd []byte) []byte {
	r, p, n := m.r, uint64(yp.p), yp.n
	s := 32 * r
	nChunk := n / p
	var nLoopAll uint64
	if yp.t <= 1 {
		nLoopAll = nChunk
		if yp.t == 1 {
			nLoopAll *= 2 // 2/3
		}
		nLoopAll = (nLoopAll + 2) / 3 // 1/3, rounded up
	} else {
		nLoopAll = nChunk * uint64(yp.t-1)
	}
	nLoopRW := nLoopAll / p
	nChunk &^= 1
	nLoopAll = (nLoopAll + 1) &^ 1
	nLoopRW = (nLoopRW + 1) &^ 1

	ctx := make([]pwxCtx, p)
	sMem := make([]uint32, sWords*int(p))
	sMixer := newMixer(1)
	for i, vChunk := uint64(0), uint64(0); i < p; i, vChunk = i+1, vChunk+nChunk {
		np := nChunk
		if i == p-1 {
			np = n - vChunk
		}
		bi := b[int(i)*s : int(i+1)*s]
		vi := v[vChunk*uint64(s):]
		c := &ctx[i]
		si := sMem[int(i)*sWords : int(i+1)*sWords]
		// 18: fill S_i with SMix1_1 of the block's first 128 bytes.
		sMixer.smix1(bi[:32], 1, sBytes/128, false, si, nil)
		// 19-22: S2, S1, S0 are its thirds in that order; w <-- 0.
		c.s2 = (*[sBoxWords]uint32)(si[:sBoxWords])
		c.s1 = (*[sBoxWords]uint32)(si[sBoxWords : 2*sBoxWords])
		c.s0 = (*[sBoxWords]uint32)(si[2*sBoxWords:])
		c.w = 0
		if i == 0 {
			// 24: passwd <-- HMAC-SHA256(B_{0,2r-1}, passwd)
			var key [64]byte
			for k, w := range bi[s-16:] {
				binary.LittleEndian.PutUint32(key[4*k:], w)
			}
			passwd = hmacSHA256(key[:], passwd)
		}
		m.smix1(bi, r, np, true, vi, c)
		m.smix2(bi, r, p2floor(np), nLoopRW, true, vi, c)
	}
	for i := range int(p) {
		m.smix2(b[i*s:(i+1)*s], r, n, nLoopAll-nLoopRW, false, v, &ctx[i])
	}
	return passwd
}

// shuffle loads block b into m.x in the word order the specification's
// SIMD-friendly layout uses (word i of each 64-byte sub-block taken from
// position 5i mod 16); unshuffle stores it back.
func shuffle(dst, src []uint32) {
	for k := 0; k < len(src); k += 16 {
		for i := range 16 {
			dst[k+i] = src[k+i*5%16]
		}
	}
}

func unshuffle(dst, src []uint32) {
	for k := 0; k < len(src); k += 16 {
		for i := range 16 {
			dst[k+i*5%16] = src[k+i]
		}
	}
}

// smix1 is SMix1_r: V_i <-- X, (with rw) X ^= V_{Wrap(Integerify(X), i)},
// X <-- H(X), N times.
func (m *mixer) smix1(b []uint32, r int, n uint64, rw bool, v []uint32, c *pwxCtx) {
	s := 32 * r
	x := m.x[:s]
	shuffle(x, b)
	for i := range n {
		copy(v[i*uint64(s):], x)
		if rw && i > 1 {
			j := wrap(integerify(x, r), i)
			xorWords(x, v[j*uint64(s):(j+1)*uint64(s)])
		}
		m.blockMix(x, r, c)
	}
	unshuffle(b, x)
}

// smix2 is SMix2_r: X ^= V_j (j from Integerify(X) mod N), with rw also
// V_j <-- X, then X <-- H(X), nLoop times.
func (m *mixer) smix2(b []uint32, r int, n, nLoop uint64, rw bool, v []uint32, c *pwxCtx) {
	s := 32 * r
	x := m.x[:s]
	shuffle(x, b)
	for range nLoop {
		j := integerify(x, r) & (n - 1)
		vj := v[j*uint64(s) : (j+1)*uint64(s)]
		xorWords(x, vj)
		if rw {
			copy(vj, x)
		}
		m.blockMix(x, r, c)
	}
	unshuffle(b, x)
}

func (m *mixer) blockMix(x []uint32, r int, c *pwxCtx) {
	if c != nil {
		blockMixPwxform(x, (*[pwxWords]uint32)(m.y[:pwxWords]), c, r)
	} else {
		blockMixSalsa8(x, m.y[:32*r], r)
	}
}

// integerify reads the first 64 bits of the last 64-byte sub-block as a
// little-endian integer; in the shuffled order they are words 0 and 13.
func integerify(x []uint32, r int) uint64 {
	last := x[(2*r-1)*16:]
	return uint64(last[13])<<32 | uint64(last[0])
}

// p2floor is the largest power of 2 not above x.
func p2floor(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	return 1 << (63 - bits.LeadingZeros64(x))
}

// wrap maps x into [0, i): the low bits below p2floor(i), shifted up into
// the most recent blocks.
func wrap(x, i uint64) uint64 {
	n := p2floor(i)
	return (x & (n - 1)) + (i - n)
}

func xorWords(dst, src []uint32) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// blockMixSalsa8 is scrypt's BlockMix with salsa20/8: each 64-byte
// sub-block chained through the core, results de-interleaved.
func blockMixSalsa8(b, y []uint32, r int) {
	var x [16]uint32
	copy(x[:], b[(2*r-1)*16:])
	for i := range 2 * r {
		xorWords(x[:], b[i*16:(i+1)*16])
		salsa20(&x, 8)
		copy(y[i*16:], x[:])
	}
	for i := range r {
		copy(b[i*16:(i+1)*16], y[2*i*16:])
		copy(b[(i+r)*16:(i+r+1)*16], y[(2*i+1)*16:])
	}
}

// blockMixPwxform is BlockMix_pwxform: pwxform chained over the 64-byte
// sub-blocks, then salsa20/2 on the last one.
func blockMixPwxform(b []uint32, y *[pwxWords]uint32, c *pwxCtx, r int) {
	r1 := 128 * r / pwxBytes
	copy(y[:], b[(r1-1)*pwxWords:r1*pwxWords])
	for i := range r1 {
		bi := (*[pwxWords]uint32)(b[i*pwxWords : (i+1)*pwxWords])
		if r1 > 1 {
			for k := range y {
				y[k] ^= bi[k]
			}
		}
		pwxform(y, c)
		*bi = *y
	}
	i := (r1 - 1) * pwxBytes / 64
	salsa20((*[16]uint32)(b[i*16:(i+1)*16]), 2)
	for i++; i < 2*r; i++ {
		xorWords(b[i*16:(i+1)*16], b[(i-1)*16:i*16])
		salsa20((*[16]uint32)(b[i*16:(i+1)*16]), 2)
	}
}

// pwxform is the specification's parallel wide transformation: 64-bit
// multiplies and S-box lookups over pwxGather lanes of pwxSimple 64-bit
// words (unrolled here: pwxSimple is 2), writing every result of the
// middle rounds into S2, then rotating the S-boxes.
func pwxform(x *[pwxWords]uint32, c *pwxCtx) {
	s0, s1, s2, w := c.s0, c.s1, c.s2, c.w
	for i := range pwxRounds {
		for j := range pwxGather {
			lane := (*[2 * pwxSimple]uint32)(x[j*2*pwxSimple:])
			// p0, p1: the 16-byte S-box entries picked by the lane's
			// first word (sMask keeps whole entries).
			p0 := (lane[0] & sMask) / 4
			p1 := (lane[1] & sMask) / 4
			e0 := (*[2 * pwxSimple]uint32)(s0[p0 : p0+2*pwxSimple])
			e1 := (*[2 * pwxSimple]uint32)(s1[p1 : p1+2*pwxSimple])
			v0 := uint64(lane[1])*uint64(lane[0]) + (uint64(e0[1])<<32 | uint64(e0[0]))
			v0 ^= uint64(e1[1])<<32 | uint64(e1[0])
			v1 := uint64(lane[3])*uint64(lane[2]) + (uint64(e0[3])<<32 | uint64(e0[2]))
			v1 ^= uint64(e1[3])<<32 | uint64(e1[2])
			lane[0], lane[1], lane[2], lane[3] = uint32(v0), uint32(v0>>32), uint32(v1), uint32(v1>>32)
			if i != 0 && i != pwxRounds-1 {
				// S2 is written in the order of the unrolled loop:
				// word pair w from v0, then w+1 from v1.
				s2[(2*w)%sBoxWords], s2[(2*w+1)%sBoxWords] = uint32(v0), uint32(v0>>32)
				s2[(2*w+2)%sBoxWords], s2[(2*w+3)%sBoxWords] = uint32(v1), uint32(v1>>32)
				w += 2
			}
		}
	}
	c.s0, c.s1, c.s2 = s2, s0, s1
	c.w = w & ((1<<sWidth)*pwxSimple - 1)
}

// salsa20 applies the Salsa20 core with the given number of rounds to a
// 64-byte block held in the shuffled order.
func salsa20(b *[16]uint32, rounds int) {
	var x [16]uint32
	for i := range 16 {
		x[i*5%16] = b[i]
	}
	for i := 0; i < rounds; i += 2 {
		// Columns.
		x[4] ^= bits.RotateLeft32(x[0]+x[12], 7)
		x[8] ^= bits.RotateLeft32(x[4]+x[0], 9)
		x[12] ^= bits.RotateLeft32(x[8]+x[4], 13)
		x[0] ^= bits.RotateLeft32(x[12]+x[8], 18)
		x[9] ^= bits.RotateLeft32(x[5]+x[1], 7)
		x[13] ^= bits.RotateLeft32(x[9]+x[5], 9)
		x[1] ^= bits.RotateLeft32(x[13]+x[9], 13)
		x[5] ^= bits.RotateLeft32(x[1]+x[13], 18)
		x[14] ^= bits.RotateLeft32(x[10]+x[6], 7)
		x[2] ^= bits.RotateLeft32(x[14]+x[10], 9)
		x[6] ^= bits.RotateLeft32(x[2]+x[14], 13)
		x[10] ^= bits.RotateLeft32(x[6]+x[2], 18)
		x[3] ^= bits.RotateLeft32(x[15]+x[11], 7)
		x[7] ^= bits.RotateLeft32(x[3]+x[15], 9)
		x[11] ^= bits.RotateLeft32(x[7]+x[3], 13)
		x[15] ^= bits.RotateLeft32(x[11]+x[7], 18)
		// Rows.
		x[1] ^= bits.RotateLeft32(x[0]+x[3], 7)
		x[2] ^= bits.RotateLeft32(x[1]+x[0], 9)
		x[3] ^= bits.RotateLeft32(x[2]+x[1], 13)
		x[0] ^= bits.RotateLeft32(x[3]+x[2], 18)
		x[6] ^= bits.RotateLeft32(x[5]+x[4], 7)
		x[7] ^= bits.RotateLeft32(x[6]+x[5], 9)
		x[4] ^= bits.RotateLeft32(x[7]+x[6], 13)
		x[5] ^= bits.RotateLeft32(x[4]+x[7], 18)
		x[11] ^= bits.RotateLeft32(x[10]+x[9], 7)
		x[8] ^= bits.RotateLeft32(x[11]+x[10], 9)
		x[9] ^= bits.RotateLeft32(x[8]+x[11], 13)
		x[10] ^= bits.RotateLeft32(x[9]+x[8], 18)
		x[12] ^= bits.RotateLeft32(x[15]+x[14], 7)
		x[13] ^= bits.RotateLeft32(x[12]+x[15], 9)
		x[14] ^= bits.RotateLeft32(x[13]+x[12], 13)
		x[15] ^= bits.RotateLeft32(x[14]+x[13], 18)
	}
	for i := range 16 {
		b[i] += x[i*5%16]
	}
}
