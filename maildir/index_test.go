package maildir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func TestParseIndex(t *testing.T) {
	good := map[string]map[string]int64{
		"popgate-sizes 1\nend 0\n":                       {},
		"popgate-sizes 1\n12 a.b\n3 with space\nend 2\n": {"a.b": 12, "with space": 3},
	}
	for in, want := range good {
		got, err := parseIndex([]byte(in))
		if err != nil || len(got) != len(want) {
			t.Errorf("parseIndex(%q) = %v, %v; want %v", in, got, err, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("parseIndex(%q)[%q] = %d, want %d", in, k, got[k], v)
			}
		}
	}
	bad := []string{
		"",
		"garbage",
		"popgate-sizes 2\nend 0\n",
		"popgate-sizes 1\n",               // no end
		"popgate-sizes 1\n12 a\n",         // truncated before end
		"popgate-sizes 1\n12 a\nend 2\n",  // count mismatch
		"popgate-sizes 1\n12 a\nend 1",    // missing final newline
		"popgate-sizes 1\n-1 a\nend 1\n",  // negative size
		"popgate-sizes 1\nx a\nend 1\n",   // not a number
		"popgate-sizes 1\n12\nend 1\n",    // no name
		"popgate-sizes 1\nend 0\n12 a\n",  // data after end
		"popgate-sizes 1\n12 a\nend x\n",  // bad count
		"popgate-sizes 1\n\x00\x00\x00\n", // binary junk
	}
	for _, in := range bad {
		if got, err := parseIndex([]byte(in)); err == nil {
			t.Errorf("parseIndex(%q) = %v, want error", in, got)
		}
	}
	// Round trip, leaving out names that cannot be written on a line.
	m := map[string]int64{"a": 1, "b c": 2, "bad\nname": 3}
	got, err := parseIndex(formatIndex(m))
	if err != nil || len(got) != 2 || got["a"] != 1 || got["b c"] != 2 {
		t.Errorf("round trip: %v, %v", got, err)
	}
}

// indexFixture is a maildir with n foreign messages on a counting fs.
func indexFixture(t *testing.T, n int) (*countingFs, func() *Store) {
	t.Helper()
	cfs := &countingFs{Fs: afero.NewMemMapFs(), vanished: map[string]bool{}}
	for i := range n {
		content := strings.Repeat("line\n", i+1)
		if i%2 == 1 {
			content = strings.Repeat("line\r\n", i+1)
		}
		writeFile(t, cfs, fmt.Sprintf("%s/new/%d.V1I%dM1.host", mdir, 1732000000+i, i), content)
	}
	return cfs, func() *Store { return NewStore(cfs, "/data/mail", Options{Hostname: "mx", Now: fixedClock}) }
}

func listSizes(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	sizes := map[string]int64{}
	for _, m := range mustList(t, mustOpen(t, s, "example.com", "alice")) {
		sizes[m.UID] = m.Size
	}
	return sizes
}

func readIndex(t *testing.T, fs afero.Fs) map[string]int64 {
	t.Helper()
	m, err := parseIndex([]byte(readAll(t, fs, filepath.Join(mdir, indexFile))))
	if err != nil {
		t.Fatalf("index file: %v", err)
	}
	return m
}

func TestIndexColdWarmAndRebuilt(t *testing.T) {
	const n = 20
	cfs, newStore := indexFixture(t, n)
	want := map[string]int64{}
	for i := range n {
		// i+1 lines of "line" + CRLF either way: 6 octets each.
		want[fmt.Sprintf("%d.V1I%dM1.host", 1732000000+i, i)] = int64(6 * (i + 1))
	}
	check := func(step string, s *Store, wantOpens int64) {
		t.Helper()
		cfs.opens.Store(0)
		got := listSizes(t, s)
		if len(got) != len(want) {
			t.Fatalf("%s: listed %d, want %d", step, len(got), len(want))
		}
		for uid, size := range want {
			if got[uid] != size {
				t.Errorf("%s: size of %s = %d, want %d", step, uid, got[uid], size)
			}
		}
		if o := cfs.opens.Load(); o != wantOpens {
			t.Errorf("%s: %d message files read, want %d", step, o, wantOpens)
		}
	}

	s := newStore()
	check("cold", s, n)
	if ix := readIndex(t, cfs); len(ix) != n {
		t.Errorf("index holds %d entries, want %d", len(ix), n)
	}
	check("warm, same store", s, 0)
	check("warm, new store (index file)", newStore(), 0)

	// A new foreign message: only it is read.
	writeFile(t, cfs, mdir+"/new/1732000100.new.host", "x\n")
	want["1732000100.new.host"] = 3
	check("one new message", newStore(), 1)
	if ix := readIndex(t, cfs); len(ix) != n+1 {
		t.Errorf("index holds %d entries after the new message, want %d", len(ix), n+1)
	}

	// Corrupt or truncated index: ignored and rebuilt.
	for _, junk := range []string{"garbage\x00\xff", "popgate-sizes 1\n6 1732000000.V1I0M1.host\n"} {
		writeFile(t, cfs, filepath.Join(mdir, indexFile), junk)
		check("corrupt index", newStore(), n+1)
		if ix := readIndex(t, cfs); len(ix) != n+1 {
			t.Errorf("rebuilt index holds %d entries, want %d", len(ix), n+1)
		}
	}

	// A wrong size in the index is trusted (names are never reused), so
	// this proves the index is what is read.
	writeFile(t, cfs, filepath.Join(mdir, indexFile), strings.Replace(
		readAll(t, cfs, filepath.Join(mdir, indexFile)), "3 1732000100.new.host", "4 1732000100.new.host", 1))
	if got := listSizes(t, newStore())["1732000100.new.host"]; got != 4 {
		t.Errorf("size from index = %d, want 4 (the index was not used)", got)
	}
}

func TestIndexMessagesGoneElsewhere(t *testing.T) {
	const n = pruneMin + 10
	cfs, newStore := indexFixture(t, n)
	listSizes(t, newStore())
	// Someone else deletes most of the messages: the index drops them.
	for i := range pruneMin + 5 {
		if err := cfs.Remove(fmt.Sprintf("%s/new/%d.V1I%dM1.host", mdir, 1732000000+i, i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := listSizes(t, newStore()); len(got) != 5 {
		t.Fatalf("listed %d, want 5", len(got))
	}
	if ix := readIndex(t, cfs); len(ix) != 5 {
		t.Errorf("index holds %d entries, want the 5 left", len(ix))
	}
}

func TestIndexFileVanishesDuringList(t *testing.T) {
	cfs, newStore := indexFixture(t, 3)
	gone := fmt.Sprintf("%s/new/%d.V1I%dM1.host", mdir, 1732000001, 1)
	cfs.vanished[gone] = true
	got := listSizes(t, newStore())
	if len(got) != 2 {
		t.Fatalf("listed %v, want the two messages still there", got)
	}
	if _, ok := got["1732000001.V1I1M1.host"]; ok {
		t.Error("vanished message listed")
	}
}

func TestIndexNotNeededForOwnNames(t *testing.T) {
	cfs := &countingFs{Fs: afero.NewMemMapFs()}
	s := NewStore(cfs, "/data/mail", Options{Hostname: "mx", Now: fixedClock})
	for range 3 {
		if _, err := s.Deliver(context.Background(), []Address{{"alice", "example.com"}}, strings.NewReader(crlfMessage)); err != nil {
			t.Fatal(err)
		}
	}
	cfs.opens.Store(0)
	for uid, size := range listSizes(t, NewStore(cfs, "/data/mail", Options{})) {
		if size != int64(len(crlfMessage)) {
			t.Errorf("%s: size %d", uid, size)
		}
	}
	if o := cfs.opens.Load(); o != 0 {
		t.Errorf("%d message files read; the names carry the sizes", o)
	}
	if _, err := cfs.Stat(filepath.Join(mdir, indexFile)); err == nil {
		t.Error("index written though no size was unknown")
	}
}

func TestIndexOnOsFs(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "example.com", "bulk")
	makeForeignMaildir(t, dir, 50)
	fs := afero.NewOsFs()
	s := NewStore(fs, root, Options{Hostname: "mx"})
	first := mustList(t, mustOpen(t, s, "example.com", "bulk"))
	if len(first) != 50 {
		t.Fatalf("listed %d", len(first))
	}
	for _, m := range first {
		rc, err := mustOpen(t, s, "example.com", "bulk").Open(m)
		if err != nil {
			t.Fatal(err)
		}
		n, err := crlfSize(rc, make([]byte, 100))
		rc.Close()
		if err != nil || n != m.Size {
			t.Errorf("%s: listed size %d, file has %d (%v)", m.UID, m.Size, n, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		t.Fatal(err)
	}
	if ix, err := parseIndex(data); err != nil || len(ix) != 50 {
		t.Fatalf("index on disk: %d entries, %v; want 50", len(ix), err)
	}
	again := mustList(t, mustOpen(t, NewStore(fs, root, Options{}), "example.com", "bulk"))
	for i := range first {
		if again[i].UID != first[i].UID || again[i].Size != first[i].Size {
			t.Errorf("warm list differs at %d", i)
		}
	}
}

func TestListSkipsDirectoriesAmongMessages(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "example.com", "bulk")
	makeForeignMaildir(t, dir, 3)
	if err := os.Mkdir(filepath.Join(dir, "new", "1732000000.adir.host"), 0o700); err != nil {
		t.Fatal(err)
	}
	msgs := mustList(t, mustOpen(t, NewStore(afero.NewOsFs(), root, Options{}), "example.com", "bulk"))
	if len(msgs) != 3 {
		t.Fatalf("listed %+v, want the 3 messages only", msgs)
	}
}

// TestOSSizeAcrossReadBoundary checks the OS fast path on files larger than
// its read buffer, with a CRLF split across two reads.
func TestOSSizeAcrossReadBoundary(t *testing.T) {
	root := t.TempDir()
	fs := afero.NewOsFs()
	body := strings.Repeat("y", scanBufSize-1) + "\r\n" + strings.Repeat("z\n", 1000) + "end\r\n"
	want := int64(len(body) + 1000) // each bare LF goes out as CRLF
	writeFile(t, fs, filepath.Join(root, "example.com", "big", "new", "1732000000.big.host"), body)
	writeFile(t, fs, filepath.Join(root, "example.com", "big", "cur", "1732000001.crlf.host:2,S"), crlfMessage)
	msgs := mustList(t, mustOpen(t, NewStore(fs, root, Options{}), "example.com", "big"))
	if len(msgs) != 2 || msgs[0].Size != want || msgs[1].Size != int64(len(crlfMessage)) {
		t.Fatalf("sizes %+v, want %d and %d", msgs, want, len(crlfMessage))
	}
}
