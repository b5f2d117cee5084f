package accessdb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadMakemapText parses a makemap input file from testdata.
func loadMakemapText(t testing.TB, name string) []Entry {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	es, err := ParseMakemap(f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// postmapForm is what postmap stores for makemap input: the value's
// trailing blanks trimmed, and a NUL after key and value.
func postmapForm(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		v := bytes.TrimRight(e.Value, " \t")
		out[i] = Entry{Key: append(bytes.Clone(e.Key), 0), Value: append(bytes.Clone(v), 0)}
	}
	return out
}

// loadDump parses db_dump's printable-hex format ("format=print" with
// every byte escaped), gzipped.
func loadDump(t testing.TB, name string) []Entry {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	var es []Entry
	var pending []byte
	havePending := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(line[1:], `\`, ""))
		if err != nil {
			t.Fatal(err)
		}
		if havePending {
			es = append(es, Entry{Key: pending, Value: b})
			havePending = false
		} else {
			pending, havePending = b, true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return es
}

// loadHexPairs reads "hexkey hexvalue" lines (db185tool's format), from a
// gzipped file when the name ends in .gz.
func loadHexPairs(t testing.TB, name string) []Entry {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<24)
	var es []Entry
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		kb, err1 := hex.DecodeString(k)
		vb, err2 := hex.DecodeString(v)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %q", name, sc.Text())
		}
		es = append(es, Entry{Key: kb, Value: vb})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return es
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkMap proves every expected key through a keyed lookup and that the
// map holds nothing else.
func checkMap(t *testing.T, m *Map, want []Entry) {
	t.Helper()
	if got := len(m.Entries()); got != len(want) {
		t.Errorf("Entries: %d pairs, want %d", got, len(want))
	}
	for _, e := range want {
		v, ok := m.Get(e.Key)
		if !ok {
			t.Errorf("Get(%.60q): not found", e.Key)
			continue
		}
		if !bytes.Equal(v, e.Value) {
			t.Errorf("Get(%.60q) = %.60q, want %.60q", e.Key, v, e.Value)
		}
	}
	if v, ok := m.Get([]byte("no-such-key.invalid")); ok {
		t.Errorf("Get(absent) = %q, true", v)
	}
	got := map[string]string{}
	for _, e := range m.Entries() {
		got[string(e.Key)] = string(e.Value)
	}
	for _, e := range want {
		if got[string(e.Key)] != string(e.Value) {
			t.Errorf("Entries lacks %.60q", e.Key)
		}
	}
}

// TestDecodeToolSamples reads maps written by the real tools (see
// testdata/README.md): makemap hash, postmap hash:, db5.3_load in both byte
// orders, and the DB 1.85 library through testdata/db185tool.c.
func TestDecodeToolSamples(t *testing.T) {
	small := loadMakemapText(t, "small.txt")
	medium := loadMakemapText(t, "medium.txt")
	loaded := loadDump(t, "load.dump.gz")
	for _, tc := range []struct {
		file string
		want []Entry
	}{
		{"makemap_small.db", small},
		{"makemap_medium.db", medium},
		{"postmap_small.db", postmapForm(small)},
		{"postmap_medium.db", postmapForm(medium)},
		{"load_le.db", loaded},
		{"load_be.db", loaded},
		{"db185_small.db", loadHexPairs(t, "db185_small.hex")},
		{"db185_medium.db", loadHexPairs(t, "db185_medium.hex.gz")},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m, err := Decode(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			want := Hash
			if strings.HasPrefix(tc.file, "db185") {
				want = Hash185
			}
			if m.Format() != want {
				t.Errorf("Format = %v, want %v", m.Format(), want)
			}
			checkMap(t, m, tc.want)
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := readTestdata(t, "load_le.db")
	small := readTestdata(t, "makemap_small.db")
	mod := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	le32 := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	// Find an off-page item in load_le.db to break its chain.
	m5, err := parseMeta5(good)
	if err != nil {
		t.Fatal(err)
	}
	var offItem int64 = -1
	for pg := uint32(1); pg <= m5.lastPgno && offItem < 0; pg++ {
		p, err := m5.page(pg)
		if err != nil || p.typ != pTypeHash {
			continue
		}
		_ = m5.eachPair(p, func(k, v item5) error {
			if offItem < 0 && v.pageData[v.start] == hOffPage {
				offItem = v.off
			}
			return nil
		})
	}
	if offItem < 0 {
		t.Fatal("no off-page item in load_le.db")
	}
	ovPage := int64(le32get(good[offItem+4:]))
	for _, tc := range []struct {
		name string
		data []byte
		off  int64
	}{
		{"empty", nil, 0},
		{"short", small[:100], 100},
		{"truncated at a page", small[:8192], 8192},
		{"truncated mid page", small[:10000], 10000},
		{"bad magic", mod(small, func(b []byte) { b[12] = 0x62 }), 12},
		{"bad page size", mod(small, func(b []byte) { le32(b, 20, 1000) }), 20},
		{"bad meta type", mod(small, func(b []byte) { b[25] = 5 }), 25},
		{"other hash function", mod(small, func(b []byte) { le32(b, metaCharKey, 1) }), metaCharKey},
		{"masks", mod(small, func(b []byte) { le32(b, metaHighMask, 6) }), metaMaxBucket},
		{"bucket page beyond file", mod(small, func(b []byte) { le32(b, metaSpares+4, 500) }), metaSpares + 4},
		{"page number mismatch", mod(small, func(b []byte) { le32(b, 8192+8, 7) }), 8192 + 8},
		{"next page beyond file", mod(small, func(b []byte) { le32(b, 8192+16, 99) }), 8192 + 16},
		{"bucket chain cycle", mod(small, func(b []byte) { le32(b, 8192+16, 2) }), 8192},
		{"item offset out of page", mod(small, func(b []byte) { b[8192+26], b[8192+27] = 0xff, 0x7f }), 8192 + 26},
		{"unknown item type", mod(small, func(b []byte) { b[8192+4086] = 9 }), 8192 + 4086},
		{"overflow chain cycle", mod(good, func(b []byte) {
			le32(b, int(ovPage*4096+16), uint32(ovPage))
			le32(b, int(offItem+8), 1<<18) // make the item long enough to loop
		}), -1},
		{"overflow page wrong type", mod(good, func(b []byte) { b[ovPage*4096+25] = pTypeHash }), -1},
		{"overflow item too long for file", mod(good, func(b []byte) { le32(b, int(offItem+8), 1<<30) }), offItem + 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode: err = %v, want a *CorruptError", err)
			}
			if tc.off >= 0 && ce.Offset != tc.off {
				t.Errorf("offset %d, want %d (%v)", ce.Offset, tc.off, err)
			}
			if !strings.Contains(err.Error(), "byte offset") {
				t.Errorf("error %q does not name the offset", err)
			}
		})
	}
}

func TestDecodeCorrupt185(t *testing.T) {
	small := readTestdata(t, "db185_small.db")
	medium := readTestdata(t, "db185_medium.db")
	mod := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	be32 := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	// A big pair in db185_medium.db: its first page has a marker below
	// REAL_KEY in slot 2 and a link in slot 3.
	h, err := parseHeader185(medium)
	if err != nil {
		t.Fatal(err)
	}
	bigPg := -1
	for pg := 1; pg < len(medium)/4096 && bigPg < 0; pg++ {
		d := medium[pg*4096:]
		if n := int(d[0]) | int(d[1])<<8; n >= 4 && d[4] == partialKey185 && d[5] == 0 {
			bigPg = pg
		}
	}
	if bigPg < 0 {
		t.Fatal("no big key page in db185_medium.db")
	}
	// Point the big key's continuation back at the page itself.
	var selfAddr uint16
	for a := uint16(1); a < splitMask185; a++ {
		for split := uint32(0); split <= 8 && selfAddr == 0; split++ {
			if addr := uint16(split<<splitShift185) | a; h.oaddrPage(addr) == uint32(bigPg) {
				selfAddr = addr
			}
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
		off  int64
	}{
		{"short", small[:200], 200},
		{"mid page", small[:5000], 4096},
		{"bad version", mod(small, func(b []byte) { be32(b, 4, 9) }), 4},
		{"bad byte order", mod(small, func(b []byte) { be32(b, 8, 1) }), 8},
		{"bad page size", mod(small, func(b []byte) { be32(b, 12, 3000) }), 12},
		{"other hash function", mod(small, func(b []byte) { be32(b, h185CharKey, 7) }), h185CharKey},
		{"masks", mod(small, func(b []byte) { be32(b, h185HighMask, 5) }), h185MaxBucket},
		{"odd offset count", mod(small, func(b []byte) { b[4096] = 3 }), 4096},
		{"big pair cycle", mod(medium, func(b []byte) {
			b[bigPg*4096+6], b[bigPg*4096+7] = byte(selfAddr), byte(selfAddr>>8)
		}), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "big pair cycle" && selfAddr == 0 {
				t.Fatal("no overflow address maps to the big page")
			}
			_, err := Decode(tc.data)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode: err = %v, want a *CorruptError", err)
			}
			if tc.off >= 0 && ce.Offset != tc.off {
				t.Errorf("offset %d, want %d (%v)", ce.Offset, tc.off, err)
			}
		})
	}
}

func le32get(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
