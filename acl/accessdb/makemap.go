package accessdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
)

// maxMakemapLine is makemap's input buffer (BUFSIZE 1024, read with fgets):
// a line of more than 1022 bytes before its newline is rejected.
const maxMakemapLine = 1022

// ParseMakemap reads makemap's input syntax, as `makemap hash` does without
// flags: one "key<whitespace>value" a line; a '#' in column one starts a
// comment; empty lines are skipped; a line starting with whitespace, a line
// without a value, a line longer than makemap's 1024-byte buffer, a NUL
// byte and a duplicate key are errors naming the line. Keys are lowercased
// (ASCII, as makemap does without -f); the value is the rest of the line
// after the separating whitespace, kept exactly (trailing blanks and a CR
// included, as makemap keeps them).
func ParseMakemap(r io.Reader) ([]Entry, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	// Size everything once when the input is a regular file (stdin
	// redirected from one, as `popgate access make FILE < text`).
	size, estLines := inputSize(r, br)
	entries := make([]Entry, 0, estLines)
	lines := make([]int32, 0, estLines)      // line of each entry, for duplicate reports
	seen := make(map[uint64]int32, estLines) // key hash -> first entry with that hash
	seed := maphash.MakeSeed()
	var arena []byte // keys and values share big allocations
	if size > 0 && size <= maxArena {
		arena = make([]byte, 0, size)
	}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("accessdb: makemap input line %d: line too long (1024 bytes max)", lineNo)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("accessdb: makemap input line %d: %w", lineNo, err)
		}
		if len(line) == 0 && err != nil {
			return entries, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(line) > maxMakemapLine {
			return nil, fmt.Errorf("accessdb: makemap input line %d: line too long (1024 bytes max)", lineNo)
		}
		if bytes.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("accessdb: makemap input line %d: NUL byte", lineNo)
		}
		if len(line) == 0 || line[0] == '#' {
			if err != nil {
				return entries, nil
			}
			continue
		}
		if isSpace(line[0]) {
			return nil, fmt.Errorf("accessdb: makemap input line %d: syntax error (leading space)", lineNo)
		}
		i := 0
		for i < len(line) && !isSpace(line[i]) {
			i++
		}
		keyLen := i
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return nil, fmt.Errorf("accessdb: makemap input line %d: no RHS for LHS %s", lineNo, lowerASCII(line[:keyLen]))
		}
		if cap(arena)-len(arena) < len(line) {
			arena = make([]byte, 0, max(arenaChunk, len(line)))
		}
		start := len(arena)
		arena = appendLower(arena, line[:keyLen])
		key := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = append(arena, line[i:]...)
		value := arena[start:len(arena):len(arena)]
		h := maphash.Bytes(seed, key)
		if first, ok := seen[h]; ok {
			if j := findKey(entries, first, key); j >= 0 {
				return nil, fmt.Errorf("accessdb: makemap input line %d: key %s: duplicate key (first on line %d)", lineNo, key, lines[j])
			}
		} else {
			seen[h] = int32(len(entries))
		}
		entries = append(entries, Entry{Key: key, Value: value})
		lines = append(lines, int32(lineNo))
		if err != nil {
			return entries, nil
		}
	}
}

const (
	// arenaChunk is the allocation unit for parsed keys and values.
	arenaChunk = 256 * 1024
	// maxArena bounds the one allocation made up front for a file's keys
	// and values.
	maxArena = 1 << 28
)

// inputSize returns the size of r when it is a regular file, and an
// estimate of its line count from the first buffered block.
func inputSize(r io.Reader, br *bufio.Reader) (int64, int) {
	st, ok := r.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return 0, 0
	}
	fi, err := st.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() <= 0 {
		return 0, 0
	}
	head, _ := br.Peek(br.Size())
	n := bytes.Count(head, []byte{'\n'})
	if n == 0 || len(head) == 0 {
		return fi.Size(), 0
	}
	est := fi.Size() * int64(n) / int64(len(head))
	return fi.Size(), int(min(est+16, 1<<22))
}

// findKey looks for key among the entries from first on, first being the
// earliest entry whose key has the same hash (a collision of distinct keys
// only costs a scan).
func findKey(entries []Entry, first int32, key []byte) int {
	for j := int(first); j < len(entries); j++ {
		if bytes.Equal(entries[j].Key, key) {
			return j
		}
	}
	return -1
}

// appendLower appends b lowercased (ASCII letters only, like makemap's
// tolower in the C locale).
func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// lowerASCII returns a lowercased copy of b (ASCII letters only, like
// makemap's tolower in the C locale).
func lowerASCII(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// FormatDump writes entries in `makemap -u` form: "key\tvalue\n" each.
func FormatDump(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	for _, e := range entries {
		bw.Write(e.Key)
		bw.WriteByte('\t')
		bw.Write(e.Value)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("accessdb: dump: %w", err)
	}
	return nil
}
