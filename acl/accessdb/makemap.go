package accessdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	var entries []Entry
	seen := map[string]int{}
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
		key := lowerASCII(line[:i])
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return nil, fmt.Errorf("accessdb: makemap input line %d: no RHS for LHS %s", lineNo, key)
		}
		if prev, dup := seen[string(key)]; dup {
			return nil, fmt.Errorf("accessdb: makemap input line %d: key %s: duplicate key (first on line %d)", lineNo, key, prev)
		}
		seen[string(key)] = lineNo
		entries = append(entries, Entry{Key: key, Value: bytes.Clone(line[i:])})
		if err != nil {
			return entries, nil
		}
	}
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
