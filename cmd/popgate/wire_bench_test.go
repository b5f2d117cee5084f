package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

// BenchmarkSingleLine20MBEndToEnd sends a 20 MB message whose body is one
// line through the assembled server: delivered into a maildir for bob and
// spooled in the queue for a remote recipient (the smarthost refuses, so
// it stays queued). B/op counts every allocation in the process;
// peak-heap-MB is the highest HeapInuse above the baseline while the
// message was in flight (issue 12: not 20 MB).
func BenchmarkSingleLine20MBEndToEnd(b *testing.B) {
	const lineLen = 20 << 20
	dir := b.TempDir()
	cfg := defaultConfig()
	cfg.Hostname = "mx.example.com"
	cfg.Domains = []string{"example.com"}
	cfg.DataDir = dir
	cfg.POP3.Listen = []string{"127.0.0.1:0"}
	cfg.SMTP.Listen = []string{"127.0.0.1:0"}
	cfg.SMTP.Submission = []string{}
	cfg.SMTP.MaxMessageBytes = 32 << 20
	cfg.Relay.TrustedNetworks = []Prefix{mustPrefix("127.0.0.0/8")}
	cfg.Relay.Mirror = nil
	cfg.Queue.Smarthost = "127.0.0.1:1"
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("bob@example.com:{PLAIN}pw\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	s, err := assemble(cfg, options{now: time.Now, logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, make(chan os.Signal)) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("tcp", s.addr("smtp.listen"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(cmd, want string) {
		b.Helper()
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatalf("%q: %v", cmd, err)
			}
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, want) {
				b.Fatalf("%q: got %q, want %q", cmd, line, want)
			}
			return
		}
	}
	expect("", "220")
	expect("EHLO bench.example", "250")
	chunk := []byte(strings.Repeat("abcdefghij", 6554))

	reportPeak := smtptest.HeapPeak(b)
	b.SetBytes(lineLen)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		expect("MAIL FROM:<x@example.org>", "250")
		expect("RCPT TO:<bob@example.com>", "250")
		expect("RCPT TO:<far@remote.example>", "250")
		expect("DATA", "354")
		io.WriteString(c, "Subject: one line\r\n\r\n")
		for left := lineLen; left > 0; {
			n := min(left, len(chunk))
			if _, err := c.Write(chunk[:n]); err != nil {
				b.Fatal(err)
			}
			left -= n
		}
		expect("\r\n.", "250 2.0.0")
	}
	b.StopTimer()
	reportPeak()
}
