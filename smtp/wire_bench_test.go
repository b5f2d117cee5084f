package smtp

import (
	"context"
	"hash/crc32"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/popgate/popgate/smtp/smtptest"
)

// crcDeliverer streams each message through a CRC and keeps nothing, so
// a benchmark sees the server's memory, not the test double's.
type crcDeliverer struct {
	sum  atomic.Uint32
	size atomic.Int64
}

func (d *crcDeliverer) Deliver(_ context.Context, _ string, _ []string, r io.Reader) error {
	h := crc32.NewIEEE()
	n, err := io.Copy(h, r)
	d.sum.Store(h.Sum32())
	d.size.Store(n)
	return err
}

// BenchmarkDataSingleLine20MB sends a 20 MB message whose body is one
// line, over a real listener, through DATA. Issue 12: it must be taken
// whole and must not cost 20 MB of heap. B/op (-benchmem) counts every
// allocation in the process, server goroutines included; peak-heap-MB is
// the highest HeapInuse seen while the message was in flight.
func BenchmarkDataSingleLine20MB(b *testing.B) {
	const lineLen = 20 << 20
	d := &crcDeliverer{}
	e := startServer(b, func(e *env) {
		e.cfg.MaxMessageBytes = 32 << 20
		e.cfg.TempDir = b.TempDir()
	})
	e.srv.deps.Deliverer = d
	rc, _ := e.raw(b, "127.0.0.2", e.mx)
	rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
	chunk := []byte(strings.Repeat("abcdefghij", 6554)) // ~64 KB
	head := "Subject: one line\r\n\r\n"
	b.SetBytes(int64(len(head) + lineLen + 2))

	reportPeak := smtptest.HeapPeak(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		toAlice(rc)
		rc.Run([]step{{Send: "DATA", Want: "354"}})
		rc.Send(head)
		for left := lineLen; left > 0; {
			n := min(left, len(chunk))
			if _, err := rc.Conn.Write(chunk[:n]); err != nil {
				b.Fatal(err)
			}
			left -= n
		}
		rc.Send("\r\n.\r\n")
		if got := rc.Reply(); !strings.HasPrefix(got, "250 2.0.0") {
			b.Fatalf("20 MB line: %q", got)
		}
	}
	b.StopTimer()
	if got := d.size.Load(); got < lineLen {
		b.Fatalf("delivered %d octets, want more than %d", got, lineLen)
	}
	reportPeak()
}
