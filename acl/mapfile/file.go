package mapfile

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
)

// ReadFile reads and decodes the map at path. With auto true the format
// comes from the file itself (see Detect), else f is used. Hash files are
// read under a shared flock, as sendmail reads them; cdb and LMDB files
// are only ever replaced whole, so a plain read sees one version.
func ReadFile(path string, f Format, auto bool) (*Map, error) {
	if auto || f == CDB || f == LMDB {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("mapfile: read %s: %w", path, err)
		}
		if auto {
			if f, err = Detect(path, data); err != nil {
				return nil, err
			}
		}
		if f == CDB || f == LMDB {
			m, err := Decode(data, f)
			if err != nil {
				return nil, fmt.Errorf("mapfile: read %s: %w", path, err)
			}
			return m, nil
		}
	}
	m, err := accessdb.ReadFile(path) // under the lock
	if err != nil {
		return nil, err
	}
	return fromAccessdb(m), nil
}

// WriteFile replaces the map at path with entries in format f. Hash
// files are rewritten in place under flock with their mtime moved
// strictly forward (accessdb.WriteFile: sendmail holds the inode). cdb
// and LMDB files are written whole to a new file in the same directory,
// fsynced, and renamed over path, so a reader sees the old map or the new
// one, never half of one; Postfix notices the rename because the inode it
// holds loses its last link (dict_changed_name checks st_nlink == 0 as
// well as the mtime). The new file keeps the old one's permission bits
// (0644 for a first one) and gets mtime max(now, previous + 1 s) in whole
// seconds, for readers that compare mtimes by path.
func WriteFile(path string, entries []accessdb.Entry, f Format, now func() time.Time) error {
	switch f {
	case Hash:
		return accessdb.WriteFile(path, entries, accessdb.Hash, now)
	case Hash185:
		return accessdb.WriteFile(path, entries, accessdb.Hash185, now)
	}
	return withDirLock(path, func() error {
		data, err := Encode(entries, f)
		if err != nil {
			return fmt.Errorf("mapfile: write %s: %w", path, err)
		}
		return replace(path, data, now)
	})
}

// Update reads the map at path (a missing or empty file is an empty map),
// lets edit change its entries and writes the result in f, all under one
// exclusive lock (for `popgate access put/del`): the file's own flock for
// hash, the directory's for cdb and LMDB, whose files are replaced. When
// the file is corrupt or edit fails, the file is left untouched.
func Update(path string, f Format, now func() time.Time, edit func(entries []accessdb.Entry) ([]accessdb.Entry, error)) error {
	switch f {
	case Hash:
		return accessdb.Update(path, accessdb.Hash, now, edit)
	case Hash185:
		return accessdb.Update(path, accessdb.Hash185, now, edit)
	}
	return withDirLock(path, func() error {
		var entries []accessdb.Entry
		data, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mapfile: update %s: %w", path, err)
		}
		if len(data) > 0 {
			m, err := Decode(data, f)
			if err != nil {
				return fmt.Errorf("mapfile: update %s: %w", path, err)
			}
			entries = m.Entries()
		}
		if entries, err = edit(entries); err != nil {
			return fmt.Errorf("mapfile: update %s: %w", path, err)
		}
		out, err := Encode(entries, f)
		if err != nil {
			return fmt.Errorf("mapfile: update %s: %w", path, err)
		}
		return replace(path, out, now)
	})
}
