//go:build interop && db185

package accessdb

// These tests need the DB 1.85 library and its dump tool (Debian package
// libdb1-compat: /lib/libdb1.so.2, /usr/bin/db_dump185) and a C compiler
// for testdata/db185tool.c. Run with -tags interop,db185.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const libdb1 = "/lib/libdb1.so.2"

// buildDB185Tool compiles testdata/db185tool.c against the DB 1.85 library.
func buildDB185Tool(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"cc", "db_dump185", libdb1} {
		if _, err := exec.LookPath(p); err != nil {
			if _, serr := os.Stat(p); serr != nil {
				t.Fatalf("interop: %s is required (apt-get install libdb1-compat gcc): %v", p, err)
			}
		}
	}
	bin := filepath.Join(t.TempDir(), "db185tool")
	out, err := exec.Command("cc", "-O1", "-o", bin, filepath.Join("testdata", "db185tool.c"), libdb1).CombinedOutput()
	if err != nil {
		t.Fatalf("cc db185tool.c: %v\n%s", err, out)
	}
	return bin
}

func hexLines(es []Entry, withValue bool) []byte {
	var b bytes.Buffer
	for _, e := range es {
		b.WriteString(hex.EncodeToString(e.Key))
		if withValue {
			b.WriteByte(' ')
			b.WriteString(hex.EncodeToString(e.Value))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func runCmd(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// parseHexPairs reads "hexkey hexvalue" lines (db185tool get) or, with
// dump set, db_dump185's alternating hex lines after HEADER=END.
func parseHexPairs(t *testing.T, out []byte, dump bool) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<25)
	inData := !dump
	var key []byte
	odd := false
	for sc.Scan() {
		line := sc.Text()
		if !inData {
			inData = line == "HEADER=END"
			continue
		}
		if !dump {
			k, v, _ := strings.Cut(line, " ")
			kb, _ := hex.DecodeString(k)
			vb, _ := hex.DecodeString(v)
			got[string(kb)] = string(vb)
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil {
			t.Fatalf("db_dump185: bad line %.80q", line)
		}
		if odd {
			got[string(key)] = string(b)
		} else {
			key = b
		}
		odd = !odd
	}
	return got
}

// TestInteropHash185WrittenFilesReadByLibdb1: every key of a Hash185 file
// popgate writes is found by DB 1.85's keyed get, and db_dump185 lists
// exactly the map.
func TestInteropHash185WrittenFilesReadByLibdb1(t *testing.T) {
	tool := buildDB185Tool(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		es   []Entry
	}{
		{"small", randomEntries(1, 50, 10, 6000)},
		{"20k", randomEntries(2, 20_000, 500, 12000)},
		{"page edges", pageEdges()},
		{"odd bytes", genEntries(3000, 97)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Encode(tc.es, Hash185)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".db")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want := wantMap(tc.es)
			sameMap(t, "db185 get", parseHexPairs(t, runCmd(t, hexLines(tc.es, false), tool, "get", path), false), want)
			sameMap(t, "db_dump185", parseHexPairs(t, runCmd(t, nil, "db_dump185", path), true), want)
		})
	}
}

// TestInteropHash185LibraryFilesReadByDecode: maps the DB 1.85 library
// builds (splitting buckets, big pairs) are read back exactly.
func TestInteropHash185LibraryFilesReadByDecode(t *testing.T) {
	tool := buildDB185Tool(t)
	for _, n := range []int{30, 20_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			es := randomEntries(uint64(n)+5, n, 200, 12000)
			es = append(es, pageEdges()...)
			path := filepath.Join(t.TempDir(), "lib.db")
			runCmd(t, hexLines(es, true), tool, "load", path)
			m, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Format() != Hash185 {
				t.Errorf("Format = %v", m.Format())
			}
			checkMap(t, m, es)
		})
	}
}
