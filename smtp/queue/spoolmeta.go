package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// A new message is one file: <id>.msg holds the body, then the initial
// envelope as JSON, then a fixed trailer: the JSON's length and its
// CRC-32C (big-endian uint32 each) and spoolMagic. The envelope sits
// after the body because the body's size, 8-bit flag and checksum are
// known only once it has been streamed in. The envelope records the
// body's length and CRC-32C, so the file's layout is fully checked: a
// .msg is a queued message only when its trailer, envelope id (equal to
// the file name's), body length (equal to the file's length before the
// envelope) and body checksum all match. A later .env, when present,
// overrides the initial envelope.
const (
	spoolMagic      = "PGQ1"
	spoolTrailerLen = 4 + 4 + len(spoolMagic)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// newBodyHash returns the hash recorded in envelope.BodyCRC.
func newBodyHash() hash.Hash32 { return crc32.New(crcTable) }

// appendSpoolMeta appends the encoded envelope and the trailer to dst.
func appendSpoolMeta(dst []byte, e *envelope) ([]byte, error) {
	b, err := encodeEnvelope(e)
	if err != nil {
		return nil, err
	}
	dst = append(dst, b...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(b, crcTable))
	return append(dst, spoolMagic...), nil
}

// errNoMeta marks a .msg without a valid envelope: a message that was
// never acknowledged (or a recycled file's stale content).
var errNoMeta = errors.New("no valid spool envelope")

// readSpoolMeta reads and checks the envelope at the end of the .msg
// file f of total length size, for id. It does not check the body's
// checksum (see checkBody).
func readSpoolMeta(f io.ReaderAt, size int64, id string) (*envelope, error) {
	if size < int64(spoolTrailerLen) {
		return nil, fmt.Errorf("%w: %d bytes", errNoMeta, size)
	}
	var tr [spoolTrailerLen]byte
	if _, err := f.ReadAt(tr[:], size-int64(spoolTrailerLen)); err != nil {
		return nil, fmt.Errorf("queue: read trailer %s: %w", id, err)
	}
	if string(tr[8:]) != spoolMagic {
		return nil, fmt.Errorf("%w: bad magic", errNoMeta)
	}
	n := int64(binary.BigEndian.Uint32(tr[0:4]))
	if n > maxEnvelopeBytes || n > size-int64(spoolTrailerLen) {
		return nil, fmt.Errorf("%w: envelope length %d", errNoMeta, n)
	}
	b := make([]byte, n)
	bodyLen := size - int64(spoolTrailerLen) - n
	if _, err := f.ReadAt(b, bodyLen); err != nil {
		return nil, fmt.Errorf("queue: read envelope %s: %w", id, err)
	}
	if crc32.Checksum(b, crcTable) != binary.BigEndian.Uint32(tr[4:8]) {
		return nil, fmt.Errorf("%w: envelope checksum", errNoMeta)
	}
	e, err := decodeEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoMeta, err)
	}
	if e.ID != id {
		return nil, fmt.Errorf("%w: names id %s", errNoMeta, e.ID)
	}
	if e.Size != bodyLen {
		return nil, fmt.Errorf("%w: body of %d bytes, envelope says %d", errNoMeta, bodyLen, e.Size)
	}
	return e, nil
}

// checkBody verifies the first e.Size bytes of r against e.BodyCRC.
func checkBody(r io.Reader, e *envelope, buf []byte) error {
	h := newBodyHash()
	n, err := io.CopyBuffer(h, io.LimitReader(r, e.Size), buf)
	if err != nil {
		return fmt.Errorf("queue: check body %s: %w", e.ID, err)
	}
	if n != e.Size || h.Sum32() != e.BodyCRC {
		return fmt.Errorf("%w: body checksum", errNoMeta)
	}
	return nil
}
