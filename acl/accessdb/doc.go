// Package accessdb reads and writes Berkeley DB hash files in pure Go, the
// on-disk format of sendmail's access.db (as written by `makemap hash`),
// Postfix's `postmap hash:` maps and Debian's libdb5.3: the DB 5.x hash
// format (on-disk hash version 9) and the older DB 1.85 hash format of the
// BSD C libraries.
//
// Decode does real keyed lookups (hash the key, find the bucket, walk its
// pages), so a map it can answer is a map libdb can answer. Encode writes
// pages the way libdb requires them: keys sorted per page, items packed
// without gaps, big items on overflow pages.
//
// WriteFile and Update implement the access.db mirror rule of DESIGN.md:
// rewrite the .db file in place under flock(LOCK_EX) (sendmail holds the
// inode open), then move its mtime strictly forward in whole seconds so
// sendmail notices the change and reopens the map.
package accessdb
