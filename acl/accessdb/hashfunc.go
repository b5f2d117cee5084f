package accessdb

// charKey is the key whose hash both DB generations store in the meta
// page (h_charkey), including its terminating NUL, so a reader can tell
// whether it hashes keys the same way as the writer did.
const charKey = "%$sniglet^&\x00"

// hashFunc5 is libdb's default hash function __ham_func5: FNV-1 with a
// zero offset basis.
func hashFunc5(key []byte) uint32 {
	var h uint32
	for _, c := range key {
		h *= 16777619
		h ^= uint32(c)
	}
	return h
}

// hashFunc4 is DB 1.85's default hash function hash4 (Chris Torek's
// h = h*33 + c).
func hashFunc4(key []byte) uint32 {
	var h uint32
	for _, c := range key {
		h = (h << 5) + h + uint32(c)
	}
	return h
}

// bucketOf maps a hash value to a bucket the way both DB generations do.
func bucketOf(h, maxBucket, highMask, lowMask uint32) uint32 {
	b := h & highMask
	if b > maxBucket {
		b &= lowMask
	}
	return b
}

// log2Ceil returns the smallest i with 1<<i >= n (libdb's __db_log2 and
// DB 1.85's __log2).
func log2Ceil(n uint32) uint32 {
	var i uint32
	for limit := uint64(1); limit < uint64(n); limit <<= 1 {
		i++
	}
	return i
}
