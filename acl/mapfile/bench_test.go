package mapfile

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/accessdb"
)

// makeInput is the 100,000-line input of docs/benchmarks.md: 50,000
// "192.168.x.y RELAY" and 50,000 "userN@example.com OK".
func makeInput() []byte {
	var b bytes.Buffer
	for i := range 50000 {
		fmt.Fprintf(&b, "192.168.%d.%d RELAY\nuser%d@example.com OK\n", i/256, i%256, i)
	}
	return b.Bytes()
}

// BenchmarkMake100k is `popgate access make` without the process: parse
// makemap text, encode, write the file (new file, fsync, rename) for each
// format. Compare with `postmap cdb:`/`postmap lmdb:` by .ci/bench-maps.sh.
func BenchmarkMake100k(b *testing.B) {
	in := makeInput()
	for _, f := range []Format{Hash, CDB, LMDB} {
		b.Run(f.String(), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "map"+f.Extension())
			b.ReportAllocs()
			for b.Loop() {
				es, err := accessdb.ParseMakemap(bytes.NewReader(in))
				if err != nil {
					b.Fatal(err)
				}
				if err := WriteFile(path, PostmapForm(f, es), f, time.Now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadGet100k reads a 100k-key map and looks one key up.
func BenchmarkReadGet100k(b *testing.B) {
	es, err := accessdb.ParseMakemap(bytes.NewReader(makeInput()))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []Format{CDB, LMDB} {
		b.Run(f.String(), func(b *testing.B) {
			data, err := Encode(PostmapForm(f, es), f)
			if err != nil {
				b.Fatal(err)
			}
			key := PostmapForm(f, []accessdb.Entry{{Key: []byte("user4711@example.com"), Value: nil}})[0].Key
			b.ReportAllocs()
			for b.Loop() {
				m, err := Decode(data, f)
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := m.Get(key); !ok {
					b.Fatal("key not found")
				}
			}
		})
	}
}
