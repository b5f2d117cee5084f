package cdb_test

import (
	"fmt"

	"github.com/popgate/popgate/acl/cdb"
)

func Example() {
	data, err := cdb.Encode([]cdb.Entry{
		{Key: []byte("192.0.2.7"), Value: []byte("OK")},
		{Key: []byte("spamford.com"), Value: []byte("REJECT")},
	})
	if err != nil {
		panic(err)
	}
	m, err := cdb.Decode(data)
	if err != nil {
		panic(err)
	}
	v, ok := m.Get([]byte("spamford.com"))
	fmt.Printf("%d bytes, %d entries, spamford.com=%s %v\n", len(data), len(m.Entries()), v, ok)
	// Output: 2125 bytes, 2 entries, spamford.com=REJECT true
}
