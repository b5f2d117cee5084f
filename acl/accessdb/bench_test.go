package accessdb

import (
	"bytes"
	"fmt"
	"testing"
)

// bench100k is the benchmark input of the comparison with makemap:
// 100,000 keys like "192.168.%d.%d" and "user%d@example.com".
func bench100k() []Entry {
	es := make([]Entry, 0, 100_000)
	for i := range 50_000 {
		es = append(es, Entry{Key: fmt.Appendf(nil, "192.168.%d.%d", i/256, i%256), Value: []byte("RELAY")})
		es = append(es, Entry{Key: fmt.Appendf(nil, "user%d@example.com", i), Value: []byte("OK")})
	}
	return es
}

func BenchmarkEncode100k(b *testing.B) {
	es := bench100k()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(es, Hash); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode185_100k(b *testing.B) {
	es := bench100k()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(es, Hash185); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGet100k(b *testing.B) {
	es := bench100k()
	data, err := Encode(es, Hash)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := m.Get(es[len(es)/2].Key); !ok {
			b.Fatal("key not found")
		}
	}
}

func BenchmarkParseMakemap100k(b *testing.B) {
	var in bytes.Buffer
	for _, e := range bench100k() {
		fmt.Fprintf(&in, "%s %s\n", e.Key, e.Value)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMakemap(bytes.NewReader(in.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMake100k is what `popgate access make` does with the 100k input:
// parse makemap text, then encode.
func BenchmarkMake100k(b *testing.B) {
	var in bytes.Buffer
	for _, e := range bench100k() {
		fmt.Fprintf(&in, "%s %s\n", e.Key, e.Value)
	}
	b.ReportAllocs()
	for b.Loop() {
		es, err := ParseMakemap(bytes.NewReader(in.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Encode(es, Hash); err != nil {
			b.Fatal(err)
		}
	}
}
