package main

import (
	"context"
	"strings"
	"testing"

	"github.com/popgate/popgate/smtp/pickup"
)

// BenchmarkSendmailHandOver is `sendmail alice` minus process start: the
// message goes over the socket to a running server and is fsynced into a
// real maildir before the reply.
func BenchmarkSendmailHandOver(b *testing.B) {
	path, _ := sendmailSetup(b, "")
	ts := startFromFile(b, path)
	msg := []byte("Subject: bench\nTo: alice\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 64))
	req := pickup.Request{Rcpts: []string{"alice"}, Size: int64(len(msg))}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		where, err := handOver(context.Background(), ts.cfg, req, msg)
		if err != nil || !strings.HasPrefix(where, "accepted") {
			b.Fatal(where, err)
		}
	}
}
