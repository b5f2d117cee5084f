package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
	"github.com/popgate/popgate/acl/mapfile"
)

// accessProgressMin is the number of entries from which `access make`
// tells an interactive user what it is writing.
const accessProgressMin = 10000

// makeGCPercent is the GC target while `access make` runs.
const makeGCPercent = 400

const accessUsage = `usage: popgate access list|dump [--format F] FILE
       popgate access get [--format F] FILE KEY
       popgate access put [--format F] FILE KEY VALUE
       popgate access del [--format F] FILE KEY
       popgate access make [--format F] FILE < text
F is hash, hash185, cdb or lmdb. Without --format an existing file's
format is detected (hash and lmdb by their magic number, cdb by the name
*.cdb) and a new file's comes from its name: *.cdb is cdb, *.lmdb is lmdb,
anything else hash.`

// accessCommand is `popgate access`: the HOWTO's db tool for sendmail
// and Postfix maps (list, get, put, del, dump) and a `makemap hash` /
// `postmap cdb:` / `postmap lmdb:` replacement (make). Keys are lowercased
// as makemap does. Writes go through acl/mapfile: hash maps are rewritten
// in place under their lock, cdb and lmdb maps replaced whole (put and del
// rebuild the file), so a running sendmail or Postfix sees them.
func accessCommand(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand\n%s", accessUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("access "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	formatName := fs.String("format", "", "hash, hash185, cdb or lmdb")
	if err := fs.Parse(args[1:]); err != nil {
		return usagef("%s: %v\n%s", sub, err, accessUsage)
	}
	rest := fs.Args()
	var format mapfile.Format
	forced := *formatName != ""
	if forced {
		f, err := mapfile.ParseFormat(*formatName)
		if err != nil {
			return usagef("%s: %v", sub, err)
		}
		format = f
	}
	want := map[string]int{"list": 1, "dump": 1, "get": 2, "put": 3, "del": 2, "make": 1}
	n, ok := want[sub]
	if !ok {
		return usagef("unknown subcommand %q\n%s", sub, accessUsage)
	}
	if len(rest) != n {
		if sub == "make" {
			return usagef("make: want FILE, got %d argument(s)\n%s", len(rest), accessUsage)
		}
		return usagef("%s: want %d argument(s), got %d\n%s", sub, n, len(rest), accessUsage)
	}
	path := rest[0]
	switch sub {
	case "list", "dump":
		m, err := mapfile.ReadFile(path, format, !forced)
		if err != nil {
			return err
		}
		return accessdb.FormatDump(e.stdout, m.Entries())
	case "get":
		return accessGet(e, path, rest[1], format, forced)
	case "put":
		return accessEdit(ctx, path, format, forced, func(f mapfile.Format, es []accessdb.Entry) ([]accessdb.Entry, error) {
			key, value := lowerKey(rest[1]), []byte(rest[2])
			if nulTerminated(es) || (len(es) == 0 && f == mapfile.LMDB) { // postmap's style
				key, value = append(key, 0), append(value, 0)
			}
			for i := range es {
				if bytes.Equal(es[i].Key, key) {
					es[i].Value = value
					return es, nil
				}
			}
			return append(es, accessdb.Entry{Key: key, Value: value}), nil
		})
	case "del":
		return accessEdit(ctx, path, format, forced, func(_ mapfile.Format, es []accessdb.Entry) ([]accessdb.Entry, error) {
			key := lowerKey(rest[1])
			for i := range es {
				if k := es[i].Key; bytes.Equal(k, key) || (len(k) == len(key)+1 && k[len(key)] == 0 && bytes.HasPrefix(k, key)) {
					return append(es[:i], es[i+1:]...), nil
				}
			}
			return nil, fmt.Errorf("key %q not found", key)
		})
	}
	if !forced {
		format = mapfile.ForPath(path)
	}
	return accessMake(ctx, e, path, format)
}

func accessGet(e *env, path, k string, format mapfile.Format, forced bool) error {
	m, err := mapfile.ReadFile(path, format, !forced)
	if err != nil {
		return err
	}
	key := lowerKey(k)
	v, ok := m.Get(key)
	if !ok {
		// postmap stores hash and lmdb keys and values with a trailing NUL.
		if v, ok = m.Get(append(key, 0)); ok {
			v = bytes.TrimSuffix(v, []byte{0})
		}
	}
	if !ok {
		return fmt.Errorf("%s: key %q not found", path, key)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", v)
	return err
}

// accessEdit applies edit to the map at path under its lock, keeping the
// file's format: the one forced, else the one detected in a non-empty
// file, else the one its name implies.
func accessEdit(ctx context.Context, path string, format mapfile.Format, forced bool, edit func(mapfile.Format, []accessdb.Entry) ([]accessdb.Entry, error)) error {
	if !forced {
		format = mapfile.ForPath(path)
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			m, err := mapfile.ReadFile(path, 0, true)
			if err != nil {
				return err
			}
			format = m.Format()
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapfile.Update(path, format, time.Now, func(es []accessdb.Entry) ([]accessdb.Entry, error) {
		return edit(format, es)
	})
}

// accessMake builds the map at path from makemap-style text on stdin.
// An lmdb map gets postmap's NUL-terminated keys and values.
func accessMake(ctx context.Context, e *env, path string, format mapfile.Format) error {
	// A batch job that allocates its whole input at once: collect garbage
	// less often while it runs (about a fifth faster for 100k lines).
	defer debug.SetGCPercent(debug.SetGCPercent(makeGCPercent))
	entries, err := accessdb.ParseMakemap(e.stdin)
	if err != nil {
		return fmt.Errorf("make %s from stdin: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.stdinIsTerminal && len(entries) >= accessProgressMin {
		fmt.Fprintf(e.stderr, "popgate access make: writing %d entries to %s\n", len(entries), path)
	}
	return mapfile.WriteFile(path, mapfile.PostmapForm(format, entries), format, time.Now)
}

// nulTerminated reports whether every key of a non-empty map ends in NUL,
// as postmap writes them.
func nulTerminated(es []accessdb.Entry) bool {
	for _, e := range es {
		if len(e.Key) == 0 || e.Key[len(e.Key)-1] != 0 {
			return false
		}
	}
	return len(es) > 0
}

// lowerKey lowercases ASCII letters as makemap does for keys.
func lowerKey(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}
