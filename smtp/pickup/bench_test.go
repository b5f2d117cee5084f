package pickup

import (
	"context"
	"strings"
	"testing"
	"time"
)

// BenchmarkSocketSubmit hands a 4 KiB message over the real Unix socket:
// SO_PEERCRED, request parsing, LF to CRLF, header completion. Delivery is
// a sink, so this is the cost pickup adds to the maildir's fsync.
func BenchmarkSocketSubmit(b *testing.B) {
	s, k := newTestServer(b, func(c *Config) { c.MaxMessageBytes = 1 << 20 })
	path := serveSocket(b, s)
	msg := "Subject: bench\nTo: alice\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 64)
	req := Request{Rcpts: []string{"alice"}, Size: int64(len(msg))}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Send(context.Background(), path, req, strings.NewReader(msg), 10*time.Second); err != nil {
			b.Fatal(err)
		}
		k.mu.Lock()
		k.delivered = k.delivered[:0]
		k.mu.Unlock()
	}
}
