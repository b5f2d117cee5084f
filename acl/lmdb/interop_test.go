//go:build interop

package lmdb

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popgate/popgate/acl/postmaptest"
)

// interopEntries are n access-map-like entries, NUL-terminated as postmap
// writes lmdb maps, with some values big enough for overflow pages.
func interopEntries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		v := "OK"
		if i%10007 == 0 {
			v = "550 5.7.1 " + strings.Repeat("go away ", 600+i%400) + "now" // > 4 KiB
		}
		es[i] = Entry{Key: fmt.Appendf(nil, "%d.%d.%d.%d\x00", 10+i%3, i>>16&0xff, i>>8&0xff, i&0xff), Value: []byte(v + "\x00")}
	}
	return es
}

// TestInteropPostmapReadsEncode writes 100k keys with Encode and asks
// Postfix's own lmdb reader for every one of them (postmap -q - reads
// keys from stdin) and for the whole map (postmap -s).
func TestInteropPostmapReadsEncode(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	es := interopEntries(100000)
	data, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "popgate.lmdb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(es)+2)
	want := make(map[string]string, len(es))
	for _, e := range es {
		k, v := string(bytes.TrimSuffix(e.Key, []byte{0})), string(bytes.TrimSuffix(e.Value, []byte{0}))
		keys = append(keys, k)
		want[k] = v
	}
	keys = append(keys, "10.255.255.255", "not.there")
	lines := postmaptest.Query(t, postmap, dir, "lmdb", filepath.Join(dir, "popgate"), keys)
	checkLines(t, "postmap -q -", []byte(strings.Join(lines, "\n")+"\n"), want)
	out, err := exec.Command(postmap, "-c", dir, "-s", "lmdb:"+filepath.Join(dir, "popgate")).Output()
	if err != nil {
		t.Fatalf("postmap -s: %v", err)
	}
	checkLines(t, "postmap -s", out, want)
}

// checkLines compares "key\tvalue" lines with want, exactly.
func checkLines(t *testing.T, who string, out []byte, want map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%s: %d lines, want %d", who, len(lines), len(want))
	}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "\t")
		if w, ok := want[k]; !ok || w != v {
			t.Fatalf("%s: %q = %.40q, want %.40q (known %v)", who, k, v, w, ok)
		}
	}
}

// TestInteropDecodeReadsPostmap builds a 100k-key map with `postmap
// lmdb:` and reads it back with Decode and Get.
func TestInteropDecodeReadsPostmap(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	es := interopEntries(100000)
	var text bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&text, "%s %s\n", bytes.TrimSuffix(e.Key, []byte{0}), bytes.TrimSuffix(e.Value, []byte{0}))
	}
	src := filepath.Join(dir, "popgate")
	postmaptest.Build(t, postmap, dir, "lmdb", src, text.String())
	data, err := os.ReadFile(src + ".lmdb")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries()) != len(es) {
		t.Errorf("%d entries, want %d", len(m.Entries()), len(es))
	}
	for _, e := range es {
		if v, ok := m.Get(e.Key); !ok || !bytes.Equal(v, e.Value) {
			t.Fatalf("Get(%q) = %.40q, %v; want %.40q", e.Key, v, ok, e.Value)
		}
	}
}

// TestInteropLiblmdbToolsReadEncode has liblmdb's own tools (lmdb-utils)
// read a 100k-key file written by Encode: mdb_stat's counts match the
// meta page, and mdb_dump lists every pair.
func TestInteropLiblmdbToolsReadEncode(t *testing.T) {
	for _, p := range []string{"mdb_stat", "mdb_dump"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not installed (lmdb-utils): %v", p, err)
		}
	}
	es := interopEntries(100000)
	data, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "popgate.lmdb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mdb_stat", "-n", path).Output()
	if err != nil {
		t.Fatalf("mdb_stat: %v", err)
	}
	for _, want := range []string{
		fmt.Sprintf("Tree depth: %d\n", m.db.depth),
		fmt.Sprintf("Branch pages: %d\n", m.db.branches),
		fmt.Sprintf("Leaf pages: %d\n", m.db.leaves),
		fmt.Sprintf("Overflow pages: %d\n", m.db.overflow),
		fmt.Sprintf("Entries: %d\n", len(es)),
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("mdb_stat lacks %q:\n%s", want, out)
		}
	}
	if m.db.depth < 3 || m.db.overflow == 0 {
		t.Errorf("depth %d, %d overflow pages: the test should cover branch levels and overflow pages", m.db.depth, m.db.overflow)
	}
	out, err = exec.Command("mdb_dump", "-n", "-p", path).Output()
	if err != nil {
		t.Fatalf("mdb_dump: %v", err)
	}
	_, body, ok := strings.Cut(string(out), "HEADER=END\n")
	if !ok {
		t.Fatalf("mdb_dump output without a header:\n%.300s", out)
	}
	lines := strings.Split(strings.TrimSuffix(body, "DATA=END\n"), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	if len(lines) != 2*len(es) {
		t.Fatalf("mdb_dump printed %d lines, want %d", len(lines), 2*len(es))
	}
	want := make(map[string]string, len(es))
	for _, e := range es {
		want[string(e.Key)] = string(e.Value)
	}
	for i := 0; i < len(lines); i += 2 {
		k, v := unprint(t, lines[i]), unprint(t, lines[i+1])
		if w, ok := want[k]; !ok || w != v {
			t.Fatalf("mdb_dump pair %q = %.40q, want %.40q", k, v, w)
		}
	}
}

// unprint decodes one line of mdb_dump -p: a leading space, printable
// bytes as is, a backslash as "\\", other bytes as "\xx" in hex.
func unprint(t *testing.T, line string) string {
	t.Helper()
	s, ok := strings.CutPrefix(line, " ")
	if !ok {
		t.Fatalf("mdb_dump line %q", line)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			b.WriteByte('\\')
			i++
			continue
		}
		var c byte
		if i+2 >= len(s) {
			t.Fatalf("mdb_dump escape in %q", line)
		}
		if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &c); err != nil {
			t.Fatalf("mdb_dump escape in %q: %v", line, err)
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String()
}

// TestInteropPostmapWritesIntoEncode has Postfix add and replace keys in a file
// Encode wrote (postmap -r -i: an LMDB write transaction on our meta pages
// and free-page database), then reads the result with Decode.
func TestInteropPostmapWritesIntoEncode(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	es := interopEntries(20000)
	data, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "popgate.lmdb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(postmap, "-c", dir, "-r", "-i", "lmdb:"+filepath.Join(dir, "popgate"))
	cmd.Stdin = strings.NewReader("added.example REJECT\n10.0.0.0 DUNNO\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postmap -i: %v\n%s", err, out)
	}
	after, err := os.ReadFile(filepath.Join(dir, "popgate.lmdb"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(after)
	if err != nil {
		t.Fatalf("Decode after postmap -i: %v", err)
	}
	if n := len(m.Entries()); n != len(es)+1 { // 10.0.0.0 replaced (its overflow pages freed), added.example new
		t.Errorf("%d entries, want %d", n, len(es)+1)
	}
	for k, want := range map[string]string{"added.example\x00": "REJECT\x00", "10.0.0.0\x00": "DUNNO\x00", "11.0.0.1\x00": "OK\x00"} {
		if v, ok := m.Get([]byte(k)); !ok || string(v) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", k, v, ok, want)
		}
	}
}
