package smtp

import (
	"bytes"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// BenchmarkDeliver measures messages per second through a real listener:
// 5 KB messages over one pipelined go-smtp client session, each delivered
// by a Deliverer that writes and fsyncs a file.
func BenchmarkDeliver(b *testing.B) {
	e := startServer(b, nil)
	var msg bytes.Buffer
	msg.WriteString("From: a@example.org\r\nTo: alice@example.com\r\nSubject: bench\r\n\r\n")
	for msg.Len() < 5*1024 {
		msg.WriteString(strings.Repeat("0123456789", 7) + "\r\n")
	}
	c, err := gosmtp.Dial(e.mx)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("bench.example.org"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(msg.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMail("a@example.org", []string{"alice@example.com"}, bytes.NewReader(msg.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if n := len(e.deliverer.messages(b, "alice@example.com")); n != b.N {
		b.Fatalf("delivered %d of %d", n, b.N)
	}
}
