package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
	"github.com/popgate/popgate/acl/mapfile"
)

// runAccess runs `popgate access ARGS` in-process with stdin.
func runAccess(t *testing.T, stdin string, tty bool, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, stdinIsTerminal: tty}
	err = accessCommand(context.Background(), e, args)
	return out.String(), errb.String(), err
}

func TestAccessMakeListGetPutDel(t *testing.T) {
	db := filepath.Join(t.TempDir(), "access.db")
	in := "# static rules\nspamford.com REJECT\n192.168.0 RELAY\nOK.Spamford.com OK\n"
	if _, _, err := runAccess(t, in, false, "make", db); err != nil {
		t.Fatal(err)
	}
	out, _, err := runAccess(t, "", false, "list", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"spamford.com\tREJECT\n", "192.168.0\tRELAY\n", "ok.spamford.com\tOK\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("list output %q lacks %q", out, line)
		}
	}
	if dump, _, _ := runAccess(t, "", false, "dump", db); dump != out {
		t.Errorf("dump %q differs from list %q", dump, out)
	}
	if out, _, err = runAccess(t, "", false, "get", db, "OK.SPAMFORD.COM"); err != nil || out != "OK\n" {
		t.Errorf("get = %q, %v", out, err)
	}
	if _, _, err = runAccess(t, "", false, "put", db, "10.0.0.7", "RELAY"); err != nil {
		t.Fatal(err)
	}
	if _, _, err = runAccess(t, "", false, "put", db, "spamford.com", "DISCARD"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = runAccess(t, "", false, "get", db, "10.0.0.7"); out != "RELAY\n" {
		t.Errorf("get after put = %q", out)
	}
	if out, _, _ = runAccess(t, "", false, "get", db, "spamford.com"); out != "DISCARD\n" {
		t.Errorf("get after replacing put = %q", out)
	}
	if _, _, err = runAccess(t, "", false, "del", db, "192.168.0"); err != nil {
		t.Fatal(err)
	}
	_, _, err = runAccess(t, "", false, "get", db, "192.168.0")
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), db) {
		t.Errorf("get of a deleted key: %v, want a not-found error naming the file", err)
	}
	before, _ := os.ReadFile(db)
	if _, _, err = runAccess(t, "", false, "del", db, "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("del of a missing key: %v", err)
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Error("failed del changed the file")
	}
	m, err := accessdb.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.Entries()); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
}

func TestAccessPutCreatesAndKeepsFormat(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "new.db")
	if _, _, err := runAccess(t, "", false, "put", db, "Host.Example", "OK"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := runAccess(t, "", false, "get", db, "host.example"); out != "OK\n" {
		t.Errorf("get = %q", out)
	}
	old := filepath.Join(dir, "old.db")
	if _, _, err := runAccess(t, "a b\n", false, "make", "--format", "hash185", old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAccess(t, "", false, "put", old, "c", "d"); err != nil {
		t.Fatal(err)
	}
	m, err := accessdb.ReadFile(old)
	if err != nil || m.Format() != accessdb.Hash185 || len(m.Entries()) != 2 {
		t.Errorf("after put: %v, err %v", m, err)
	}
}

func TestAccessGetPostmapNUL(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pf.db")
	es := []accessdb.Entry{{Key: []byte("example.com\x00"), Value: []byte("OK\x00")}}
	if err := accessdb.WriteFile(db, es, accessdb.Hash, time.Now); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runAccess(t, "", false, "get", db, "example.com"); err != nil || out != "OK\n" {
		t.Errorf("get of a postmap-style key = %q, %v", out, err)
	}
	// put keeps the map's NUL style, del finds NUL-terminated keys.
	if _, _, err := runAccess(t, "", false, "put", db, "other.example", "RELAY"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runAccess(t, "", false, "del", db, "example.com"); err != nil {
		t.Fatal(err)
	}
	m, err := accessdb.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Get([]byte("other.example\x00")); !ok || string(v) != "RELAY\x00" || len(m.Entries()) != 1 {
		t.Errorf("after put/del on a postmap map: %q %v, %d entries", v, ok, len(m.Entries()))
	}
}

func TestAccessMakeProgress(t *testing.T) {
	var b strings.Builder
	for i := range accessProgressMin {
		b.WriteString("user")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("@example.com OK\n")
	}
	db := filepath.Join(t.TempDir(), "big.db")
	_, stderr, err := runAccess(t, b.String(), true, "make", db)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "writing 10000 entries") {
		t.Errorf("no progress line on a terminal: %q", stderr)
	}
	_, stderr, err = runAccess(t, b.String(), false, "make", db)
	if err != nil || stderr != "" {
		t.Errorf("not a terminal: stderr %q, err %v", stderr, err)
	}
}

func TestAccessErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "access.db")
	if _, _, err := runAccess(t, "a RELAY\n", false, "make", db); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(db)
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte{0x55}, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		usage bool
		want  string
	}{
		{"no subcommand", "", nil, true, "missing subcommand"},
		{"unknown subcommand", "", []string{"frob", db}, true, `unknown subcommand "frob"`},
		{"list without file", "", []string{"list"}, true, "want 1 argument"},
		{"get without key", "", []string{"get", db}, true, "want 2 argument"},
		{"put without value", "", []string{"put", db, "k"}, true, "want 3 argument"},
		{"del extra", "", []string{"del", db, "k", "x"}, true, "want 2 argument"},
		{"make without file", "", []string{"make"}, true, "want FILE"},
		{"make bad format", "", []string{"make", "--format", "btree", db}, true, "unknown format"},
		{"make bad flag", "", []string{"make", "--fast", db}, true, "flag provided but not defined"},
		{"make bad line", "ok RELAY\n  bad\n", []string{"make", db}, false, "line 2: syntax error (leading space)"},
		{"make duplicate", "a 1\nA 2\n", []string{"make", db}, false, "line 2: key a: duplicate key"},
		{"list missing", "", []string{"list", filepath.Join(dir, "missing.db")}, false, "missing.db"},
		{"list corrupt", "", []string{"list", corrupt}, false, "corrupt.db"},
		{"put corrupt", "", []string{"put", corrupt, "k", "v"}, false, "corrupt.db"},
		{"get missing key", "", []string{"get", db, "zzz"}, false, `key "zzz" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runAccess(t, tc.stdin, false, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			var ue *usageError
			if errors.As(err, &ue) != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", !tc.usage, tc.usage, err)
			}
			if after, _ := os.ReadFile(db); !bytes.Equal(after, good) {
				t.Error("a failed command changed the file")
			}
		})
	}
	if after, _ := os.ReadFile(corrupt); !bytes.Equal(after, bytes.Repeat([]byte{0x55}, 8192)) {
		t.Error("put rewrote a corrupt file")
	}
}

// TestAccessCDBAndLMDB drives make/list/get/put/del/dump on cdb and lmdb
// maps: the format from the file name for a new map, from the file for an
// existing one, and lmdb keys in postmap's NUL-terminated form.
func TestAccessCDBAndLMDB(t *testing.T) {
	in := "Spamford.com REJECT\n192.168.0 OK\n"
	for _, tc := range []struct {
		name   string
		format mapfile.Format
		nul    bool
	}{{"popgate.cdb", mapfile.CDB, false}, {"popgate.lmdb", mapfile.LMDB, true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.name)
			if _, _, err := runAccess(t, in, false, "make", path); err != nil {
				t.Fatal(err)
			}
			m, err := mapfile.ReadFile(path, tc.format, false)
			if err != nil {
				t.Fatalf("make did not write %v: %v", tc.format, err)
			}
			key := []byte("spamford.com")
			if tc.nul {
				key = append(key, 0)
			}
			if _, ok := m.Get(key); !ok {
				t.Errorf("key %q not stored in postmap's form", key)
			}
			if out, _, err := runAccess(t, "", false, "get", path, "SPAMFORD.com"); err != nil || out != "REJECT\n" {
				t.Errorf("get = %q, %v", out, err)
			}
			if _, _, err := runAccess(t, "", false, "put", path, "10.0.0.7", "OK"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := runAccess(t, "", false, "del", path, "spamford.com"); err != nil {
				t.Fatal(err)
			}
			out, _, err := runAccess(t, "", false, "list", path)
			if err != nil {
				t.Fatal(err)
			}
			want := "192.168.0\tOK\n10.0.0.7\tOK\n"
			if tc.nul {
				want = "10.0.0.7\x00\tOK\x00\n192.168.0\x00\tOK\x00\n" // key order, NULs as stored
			}
			if out != want {
				t.Errorf("list after put/del = %q, want %q", out, want)
			}
			if _, _, err := runAccess(t, "", false, "get", path, "spamford.com"); err == nil {
				t.Error("deleted key still found")
			}
			// The rebuilt file is still the same format, and --format
			// reads it explicitly.
			if _, _, err := runAccess(t, "", false, "dump", "--format", tc.format.String(), path); err != nil {
				t.Errorf("dump --format %v: %v", tc.format, err)
			}
			if _, _, err := runAccess(t, "", false, "dump", "--format", "hash", path); err == nil {
				t.Error("dump --format hash read a cdb/lmdb file")
			}
			// put into a new map picks the format from the name.
			fresh := filepath.Join(dir, "fresh"+tc.format.Extension())
			if _, _, err := runAccess(t, "", false, "put", fresh, "Host.Example", "REJECT"); err != nil {
				t.Fatal(err)
			}
			if m, err := mapfile.ReadFile(fresh, tc.format, false); err != nil || len(m.Entries()) != 1 {
				t.Errorf("put into a new %v map: %v", tc.format, err)
			}
			if out, _, _ := runAccess(t, "", false, "get", fresh, "host.example"); out != "REJECT\n" {
				t.Errorf("get from the new map = %q", out)
			}
		})
	}
}

func TestAccessFormatErrors(t *testing.T) {
	dir := t.TempDir()
	noext := filepath.Join(dir, "popgate")
	if _, _, err := runAccess(t, "a OK\n", false, "make", "--format", "cdb", noext); err != nil {
		t.Fatal(err)
	}
	// cdb has no magic number: without the name or --format it is unknown.
	if _, _, err := runAccess(t, "", false, "list", noext); err == nil || !strings.Contains(err.Error(), "not named *.cdb") {
		t.Errorf("list of an unnamed cdb = %v", err)
	}
	if out, _, err := runAccess(t, "", false, "get", "--format", "cdb", noext, "a"); err != nil || out != "OK\n" {
		t.Errorf("get --format cdb = %q, %v", out, err)
	}
	if _, _, err := runAccess(t, "", false, "list", "--format", "gdbm", noext); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("bad --format = %v", err)
	}
	if _, _, err := runAccess(t, "a 1\nA 2\n", false, "make", filepath.Join(dir, "dup.lmdb")); err == nil || !strings.Contains(err.Error(), "duplicate key") {
		t.Errorf("make with a duplicate = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dup.lmdb")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed make left a file behind")
	}
}
