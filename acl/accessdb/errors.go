package accessdb

import "fmt"

// CorruptError reports a file that is not a well-formed hash map. Offset is
// the byte offset in the file where the problem was found.
type CorruptError struct {
	Offset int64
	Msg    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("accessdb: corrupt at byte offset %d: %s", e.Offset, e.Msg)
}

func corruptf(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// DuplicateKeyError reports a key given twice to Encode; makemap refuses
// such input too (unless told -r).
type DuplicateKeyError struct{ Key []byte }

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("accessdb: duplicate key %q", e.Key)
}
