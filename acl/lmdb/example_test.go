package lmdb_test

import (
	"fmt"

	"github.com/popgate/popgate/acl/lmdb"
)

func Example() {
	// Postfix's postmap lmdb: stores keys and values with a trailing NUL.
	data, err := lmdb.Encode([]lmdb.Entry{
		{Key: []byte("spamford.com\x00"), Value: []byte("REJECT\x00")},
		{Key: []byte("192.0.2.7\x00"), Value: []byte("OK\x00")},
	})
	if err != nil {
		panic(err)
	}
	m, err := lmdb.Decode(data)
	if err != nil {
		panic(err)
	}
	for _, e := range m.Entries() { // key order
		fmt.Printf("%q=%q\n", e.Key, e.Value)
	}
	fmt.Println(len(data)/lmdb.PageSize, "pages")
	// Output:
	// "192.0.2.7\x00"="OK\x00"
	// "spamford.com\x00"="REJECT\x00"
	// 3 pages
}
