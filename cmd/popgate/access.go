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
)

// accessProgressMin is the number of entries from which `access make`
// tells an interactive user what it is writing.
const accessProgressMin = 10000

// makeGCPercent is the GC target while `access make` runs.
const makeGCPercent = 400

const accessUsage = `usage: popgate access list|dump FILE
       popgate access get FILE KEY
       popgate access put FILE KEY VALUE
       popgate access del FILE KEY
       popgate access make [--format hash|hash185] FILE < text`

// accessCommand is `popgate access`: the HOWTO's db tool for sendmail
// hash maps (list, get, put, del, dump) and a `makemap hash` replacement
// (make). Keys are lowercased as makemap does. Every write goes through
// accessdb's in-place, locked rewrite, so a running sendmail sees it.
func accessCommand(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand\n%s", accessUsage)
	}
	sub, rest := args[0], args[1:]
	want := map[string]int{"list": 1, "dump": 1, "get": 2, "put": 3, "del": 2}
	if n, ok := want[sub]; ok && len(rest) != n {
		return usagef("%s: want %d argument(s), got %d\n%s", sub, n, len(rest), accessUsage)
	}
	switch sub {
	case "list", "dump":
		m, err := accessdb.ReadFile(rest[0])
		if err != nil {
			return err
		}
		return accessdb.FormatDump(e.stdout, m.Entries())
	case "get":
		return accessGet(e, rest[0], rest[1])
	case "put":
		return accessEdit(ctx, rest[0], func(es []accessdb.Entry) ([]accessdb.Entry, error) {
			key, value := lowerKey(rest[1]), []byte(rest[2])
			if nulTerminated(es) { // a postmap map: keep its style
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
		return accessEdit(ctx, rest[0], func(es []accessdb.Entry) ([]accessdb.Entry, error) {
			key := lowerKey(rest[1])
			for i := range es {
				if k := es[i].Key; bytes.Equal(k, key) || (len(k) == len(key)+1 && k[len(key)] == 0 && bytes.HasPrefix(k, key)) {
					return append(es[:i], es[i+1:]...), nil
				}
			}
			return nil, fmt.Errorf("key %q not found", key)
		})
	case "make":
		return accessMake(ctx, e, rest)
	}
	return usagef("unknown subcommand %q\n%s", sub, accessUsage)
}

func accessGet(e *env, path, k string) error {
	m, err := accessdb.ReadFile(path)
	if err != nil {
		return err
	}
	key := lowerKey(k)
	v, ok := m.Get(key)
	if !ok {
		// postmap stores keys and values with a trailing NUL.
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
// file's format (hash for a new file).
func accessEdit(ctx context.Context, path string, edit func([]accessdb.Entry) ([]accessdb.Entry, error)) error {
	format := accessdb.Hash
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		m, err := accessdb.ReadFile(path)
		if err != nil {
			return err
		}
		format = m.Format()
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return accessdb.Update(path, format, time.Now, edit)
}

func accessMake(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("access make", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	formatName := fs.String("format", "hash", "hash or hash185")
	if err := fs.Parse(args); err != nil {
		return usagef("make: %v\n%s", err, accessUsage)
	}
	if fs.NArg() != 1 {
		return usagef("make: want FILE, got %d argument(s)\n%s", fs.NArg(), accessUsage)
	}
	format, err := accessdb.ParseFormat(*formatName)
	if err != nil {
		return usagef("make: %v", err)
	}
	path := fs.Arg(0)
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
	return accessdb.WriteFile(path, entries, format, time.Now)
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
