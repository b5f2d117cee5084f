//go:build interop

package cdb

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popgate/popgate/acl/postmaptest"
)

// interopEntries are n access-map-like entries as postmap cdb: stores
// them (no trailing NUL), some values longer than 4 KiB.
func interopEntries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		v := "OK"
		if i%10007 == 0 {
			v = "550 5.7.1 " + strings.Repeat("go away ", 600+i%400) + "now"
		}
		es[i] = Entry{Key: fmt.Appendf(nil, "%d.%d.%d.%d", 10+i%3, i>>16&0xff, i>>8&0xff, i&0xff), Value: []byte(v)}
	}
	return es
}

// TestInteropPostmapReadsEncode writes 100k keys with Encode and asks
// Postfix's cdb reader (tinycdb, postfix-cdb) for every one of them.
func TestInteropPostmapReadsEncode(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	es := interopEntries(100000)
	data, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "popgate.cdb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(es)+2)
	for _, e := range es {
		keys = append(keys, string(e.Key))
	}
	keys = append(keys, "10.255.255.255", "not.there")
	lines := postmaptest.Query(t, postmap, dir, "cdb", filepath.Join(dir, "popgate"), keys)
	if len(lines) != len(es) {
		t.Fatalf("postmap found %d keys, want %d", len(lines), len(es))
	}
	for i, l := range lines { // postmap -q - answers in input order
		if want := string(es[i].Key) + "\t" + string(es[i].Value); l != want {
			t.Fatalf("postmap -q line %d = %.60q, want %.60q", i, l, want)
		}
	}
}

// TestInteropDecodeReadsPostmap builds a 100k-key map with `postmap cdb:`
// and reads it back with Decode and Get; Encode writes the same bytes.
func TestInteropDecodeReadsPostmap(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	es := interopEntries(100000)
	var text bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&text, "%s %s\n", e.Key, e.Value)
	}
	src := filepath.Join(dir, "popgate")
	postmaptest.Build(t, postmap, dir, "cdb", src, text.String())
	data, err := os.ReadFile(src + ".cdb")
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
	ours, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, data) {
		t.Errorf("Encode (%d bytes) differs from postmap's file (%d bytes)", len(ours), len(data))
	}
}
