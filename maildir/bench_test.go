package maildir

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// benchMessages is the size of the mailbox BenchmarkList100k lists.
const benchMessages = 100_000

// makeForeignMaildir fills dir/new with n messages of 2-4 KB, LF line
// endings and plain names, as Postfix virtual(8) writes them.
func makeForeignMaildir(tb testing.TB, dir string, n int) {
	tb.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	line := bytes.Repeat([]byte("x"), 71)
	line = append(line, '\n')
	var wg sync.WaitGroup
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				var b bytes.Buffer
				fmt.Fprintf(&b, "From: a@example.com\nSubject: message %d\n\n", i)
				for range 28 + i%28 { // 2-4 KB
					b.Write(line)
				}
				name := fmt.Sprintf("%d.V801I%xM%d.host", 1732000000+i/10, i, i%1000)
				if err := os.WriteFile(filepath.Join(dir, "new", name), b.Bytes(), 0o600); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
}

// markUnread sets every file's atime before its mtime.
func markUnread(tb testing.TB, dir string) {
	tb.Helper()
	f, err := os.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Unix(1732000000, 0)
	for _, n := range names {
		if err := os.Chtimes(filepath.Join(dir, n), t0, t0.Add(time.Second)); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkList100k lists a 100,000-message foreign maildir: "cold" with no
// size index (every file read, the first POP3 session ever), "cold-unread"
// the same with files never read before, "warm-file"
// with the index on disk and a fresh Store (a new process), "warm-mem" with
// the same Store again (the next session in the same process).
func BenchmarkList100k(b *testing.B) {
	root := b.TempDir()
	dir := filepath.Join(root, "example.com", "bulk")
	makeForeignMaildir(b, dir, benchMessages)
	fs := afero.NewOsFs()
	list := func(b *testing.B, s *Store) {
		b.Helper()
		mb, err := s.Open("example.com", "bulk")
		if err != nil {
			b.Fatal(err)
		}
		msgs, err := mb.List()
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != benchMessages {
			b.Fatalf("listed %d messages, want %d", len(msgs), benchMessages)
		}
	}
	b.Run("cold", func(b *testing.B) {
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			_ = os.Remove(filepath.Join(dir, indexFile))
			s := NewStore(fs, root, Options{Hostname: "bench"})
			b.StartTimer()
			c0 := cpuTime()
			list(b, s)
			cpu += cpuTime() - c0
		}
		// CPU time (user+system) says more than wall time on a busy machine.
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	})
	b.Run("cold-unread", func(b *testing.B) {
		// As cold, but every file looks never read since it was written
		// (atime before mtime), as after a Postfix delivery: with relatime
		// a plain read would also write each inode's atime.
		var cpu time.Duration
		for b.Loop() {
			b.StopTimer()
			_ = os.Remove(filepath.Join(dir, indexFile))
			markUnread(b, filepath.Join(dir, "new"))
			s := NewStore(fs, root, Options{Hostname: "bench"})
			b.StartTimer()
			c0 := cpuTime()
			list(b, s)
			cpu += cpuTime() - c0
		}
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	})
	b.Run("warm-file", func(b *testing.B) {
		list(b, NewStore(fs, root, Options{Hostname: "bench"}))
		for b.Loop() {
			b.StopTimer()
			s := NewStore(fs, root, Options{Hostname: "bench"})
			b.StartTimer()
			list(b, s)
		}
	})
	b.Run("warm-mem", func(b *testing.B) {
		s := NewStore(fs, root, Options{Hostname: "bench"})
		list(b, s)
		for b.Loop() {
			list(b, s)
		}
	})
}

// BenchmarkDeliver delivers a 3 KB message to one and to three mailboxes
// on the OS filesystem, fsyncs included.
func BenchmarkDeliver(b *testing.B) {
	msg := bytes.Repeat([]byte("0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"), 46)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("rcpt=%d", n), func(b *testing.B) {
			s := NewStore(afero.NewOsFs(), b.TempDir(), Options{Hostname: "bench"})
			var to []Address
			for i := range n {
				to = append(to, Address{Local: fmt.Sprintf("u%d", i), Domain: "example.com"})
			}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := s.Deliver(context.Background(), to, bytes.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDeliverMail is final delivery with Return-Path and Delivered-To:
// one copy per mailbox instead of one file hard-linked into each, so it is
// compared with BenchmarkDeliver on the same message.
func BenchmarkDeliverMail(b *testing.B) {
	msg := append([]byte("Received: from c by mx\r\nSubject: bench\r\n\r\n"),
		bytes.Repeat([]byte("0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"), 46)...)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("rcpt=%d", n), func(b *testing.B) {
			s := NewStore(afero.NewOsFs(), b.TempDir(), Options{Hostname: "bench"})
			var to []Address
			for i := range n {
				to = append(to, Address{Local: fmt.Sprintf("u%d", i), Domain: "example.com"})
			}
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := s.DeliverMail(context.Background(), "sender@example.org", to, bytes.NewReader(msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLockUnlock is the locking cost of one POP3 session on a real
// disk: in-process lock, lease created (write aside, link, remove the
// aside file) and released (read, rename aside, read back, remove).
func BenchmarkLockUnlock(b *testing.B) {
	s := NewStore(afero.NewOsFs(), b.TempDir(), Options{LeaseRenew: time.Hour})
	mb, err := s.Open("example.com", "alice")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		unlock, err := mb.Lock()
		if err != nil {
			b.Fatal(err)
		}
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
	}
}
