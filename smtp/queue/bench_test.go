package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

// BenchmarkRelay measures messages per second spooled durably on a real
// disk and delivered to a local go-smtp sink over TCP.
func BenchmarkRelay(b *testing.B) {
	s := smtptest.NewSink(b)
	cfg := Config{
		Dir:          b.TempDir(),
		Hostname:     "relay.test",
		Smarthost:    s.Addr,
		SmarthostTLS: TLSNone,
		Bouncer:      &bouncer{ch: make(chan bounceRec, 1)},
	}
	q, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done; q.Close() }()
	body := testMsg + strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n", 50)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := q.Enqueue(ctx, "alice@local.test", []string{"bob@remote.test"}, strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		select {
		case <-s.Received():
		case <-time.After(30 * time.Second):
			b.Fatal("delivery stalled")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
