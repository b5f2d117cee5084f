package accessdb

import "fmt"

// Format is an on-disk Berkeley DB hash format.
type Format int

const (
	// Hash is the DB 5.x hash format (on-disk hash version 9), as written by
	// libdb5.3, makemap hash and postmap hash:. Encode writes it
	// little-endian; Decode reads either byte order.
	Hash Format = iota
	// Hash185 is the DB 1.85 hash format of the BSD C libraries.
	Hash185
)

// ParseFormat parses a format name as used in configuration: "hash" or
// "hash185".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "hash":
		return Hash, nil
	case "hash185":
		return Hash185, nil
	}
	return 0, fmt.Errorf("accessdb: unknown format %q (want hash or hash185)", s)
}

// String returns the configuration name of f.
func (f Format) String() string {
	switch f {
	case Hash:
		return "hash"
	case Hash185:
		return "hash185"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}
