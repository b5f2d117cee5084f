package accessdb

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// genEntries builds n distinct entries; bigEvery > 0 makes every
// bigEvery-th value larger than a page.
func genEntries(n, bigEvery int) []Entry {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	es := make([]Entry, n)
	for i := range es {
		var k []byte
		switch i % 3 {
		case 0:
			k = fmt.Appendf(nil, "192.168.%d.%d", i/256, i%256)
		case 1:
			k = fmt.Appendf(nil, "user%d@example.com", i)
		default:
			k = fmt.Appendf(nil, "k\x00\xff\t %d", i) // odd bytes
		}
		v := []byte("RELAY")
		if i%2 == 1 {
			v = []byte("OK")
		}
		if bigEvery > 0 && i%bigEvery == 0 {
			v = bytes.Repeat([]byte{byte('a' + i%26)}, 4096+r.IntN(9000))
		}
		es[i] = Entry{Key: k, Value: v}
	}
	return es
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{Hash, Hash185} {
		for _, tc := range []struct {
			name string
			es   []Entry
		}{
			{"empty", nil},
			{"one", []Entry{{Key: []byte("192.168.0"), Value: []byte("RELAY")}}},
			{"empty key and value", []Entry{{Key: []byte{}, Value: []byte{}}, {Key: []byte("a"), Value: nil}}},
			{"prefix keys", []Entry{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("ab"), Value: []byte("2")}, {Key: []byte("a\x00"), Value: []byte("3")}, {Key: []byte("b"), Value: []byte("4")}}},
			{"100", genEntries(100, 0)},
			{"100k", genEntries(100_000, 0)},
			{"big values", genEntries(300, 7)},
			{"big keys", []Entry{{Key: bytes.Repeat([]byte("K"), 1025), Value: []byte("v")}, {Key: bytes.Repeat([]byte("L"), 9000), Value: bytes.Repeat([]byte("w"), 5000)}, {Key: []byte("s"), Value: []byte("t")}}},
			{"page edges", pageEdges()},
			{"quarter page edge", []Entry{{Key: bytes.Repeat([]byte("x"), 1024), Value: bytes.Repeat([]byte("y"), 1025)}}},
		} {
			t.Run(f.String()+"/"+tc.name, func(t *testing.T) {
				data, err := Encode(tc.es, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(data)%pageSize != 0 {
					t.Errorf("size %d not a whole number of pages", len(data))
				}
				m, err := Decode(data)
				if err != nil {
					t.Fatal(err)
				}
				if m.Format() != f {
					t.Errorf("Format = %v, want %v", m.Format(), f)
				}
				checkMap(t, m, tc.es)
				again, err := Encode(tc.es, f)
				if err != nil || !bytes.Equal(again, data) {
					t.Errorf("Encode is not deterministic (err %v)", err)
				}
			})
		}
	}
}

// pageEdges has pairs around DB 1.85's big-pair limits: values that just
// fit or just miss the key's last page, exactly fill a data page, and
// several big pairs in one bucket.
func pageEdges() []Entry {
	var es []Entry
	for i, n := range []int{4070, 4074, 4075, 4076, 4078, 4079, 4080, 4081, 4082, 4083, 4084, 8150, 8152, 8160, 12000} {
		es = append(es, Entry{Key: fmt.Appendf(nil, "v%d", i), Value: bytes.Repeat([]byte{'a' + byte(i)}, n)})
	}
	for i, n := range []int{4078, 4079, 4080, 4081, 4082, 4083, 4090, 8000} {
		es = append(es, Entry{Key: bytes.Repeat([]byte{'A' + byte(i)}, n), Value: []byte("small")})
		es = append(es, Entry{Key: bytes.Repeat([]byte{'a' + byte(i)}, n), Value: bytes.Repeat([]byte("d"), 3000+n)})
	}
	return es
}

func TestEncodeDuplicate(t *testing.T) {
	es := []Entry{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}, {Key: []byte("a"), Value: []byte("3")}}
	for _, f := range []Format{Hash, Hash185} {
		_, err := Encode(es, f)
		var de *DuplicateKeyError
		if !errors.As(err, &de) || string(de.Key) != "a" {
			t.Errorf("%v: err = %v, want duplicate key \"a\"", f, err)
		}
	}
	if _, err := Encode([]Entry{{Key: nil, Value: make([]byte, 5000)}}, Hash185); err == nil {
		t.Error("hash185: an empty key with a big value: no error")
	}
	if _, err := Encode(nil, Format(9)); err == nil {
		t.Error("Encode with an unknown format: no error")
	}
}

func TestEncodeBigEndianReadable(t *testing.T) {
	es := genEntries(2000, 50)
	data, err := encode5(es, bigEndian())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, m, es)
	es185 := genEntries(2000, 0)
	data, err = encode185(es185, bigEndian())
	if err != nil {
		t.Fatal(err)
	}
	if m, err = Decode(data); err != nil {
		t.Fatal(err)
	}
	checkMap(t, m, es185)
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"hash": Hash, "hash185": Hash185} {
		if got, err := ParseFormat(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "btree", "HASH", "hash "} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q): no error", bad)
		}
	}
}

// TestCompareKeys5 pins the page order db5.3_load produced for a prefix
// chain inserted shortest first: off-page keys ascending by length, then
// on-page keys descending by length.
func TestCompareKeys5(t *testing.T) {
	want := []int{1025, 1026, 3000, 1024, 1000, 2, 1}
	var keys [][]byte
	for _, n := range []int{1, 1000, 1024, 1025, 1026, 3000, 2} {
		keys = append(keys, bytes.Repeat([]byte("x"), n))
	}
	slices.SortFunc(keys, compareKeys5)
	for i, k := range keys {
		if len(k) != want[i] {
			t.Fatalf("position %d: key of %d bytes, want %d", i, len(k), want[i])
		}
	}
	if compareKeys5([]byte("ab"), []byte("b")) >= 0 || compareKeys5([]byte("b"), []byte("ab")) <= 0 || compareKeys5([]byte("q"), []byte("q")) != 0 {
		t.Error("plain byte order broken")
	}
	if !prefixOfAny([]byte("x"), [][]byte{bytes.Repeat([]byte("x"), 2000)}) || prefixOfAny(bytes.Repeat([]byte("x"), 2000), [][]byte{bytes.Repeat([]byte("x"), 3000)}) {
		t.Error("prefixOfAny")
	}
}
