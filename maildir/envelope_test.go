package maildir

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/afero"
)

// readDelivered returns the one message in new/ of a mailbox.
func readDelivered(t *testing.T, fs afero.Fs, dir string) string {
	t.Helper()
	names := dirNames(t, fs, filepath.Join(dir, "new"))
	if len(names) != 1 {
		t.Fatalf("%s/new holds %q, want one message", dir, names)
	}
	return readAll(t, fs, filepath.Join(dir, "new", names[0]))
}

func TestDeliverMailAddsReturnPathAndDeliveredTo(t *testing.T) {
	s, fs := newMemStore(t)
	msg := "Received: from c by mx\r\nReturn-Path: <forged@evil.example>\r\nSubject: hi\r\n" +
		"return-path:\r\n <folded@evil.example>\r\nX-Keep: 1\r\n\r\nReturn-Path: <body@stays.example>\r\n"
	to := []Address{{"alice", "example.com"}, {"Bob", "Example.com"}, {"alice", "EXAMPLE.com"}}
	names, err := s.DeliverMail(context.Background(), "sender@remote.example", to, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	rest := "Received: from c by mx\nSubject: hi\nX-Keep: 1\n\nReturn-Path: <body@stays.example>\n"
	alice := readDelivered(t, fs, "/data/mail/example.com/alice")
	if want := "Return-Path: <sender@remote.example>\nDelivered-To: alice@example.com\n" + rest; alice != want {
		t.Errorf("alice's copy:\n%q\nwant\n%q", alice, want)
	}
	bob := readDelivered(t, fs, "/data/mail/example.com/Bob")
	if want := "Return-Path: <sender@remote.example>\nDelivered-To: Bob@Example.com\n" + rest; bob != want {
		t.Errorf("Bob's copy:\n%q\nwant\n%q", bob, want)
	}
	if names[0] != names[2] || names[0] == names[1] {
		t.Errorf("names %q: the same maildir twice must get one copy, others their own", names)
	}
	wantSize := ",S=" + itoa(len(alice)) + ",W=" + itoa(len(alice)+strings.Count(alice, "\n"))
	if !strings.HasSuffix(names[0], wantSize) {
		t.Errorf("name %q, want size suffix %q", names[0], wantSize)
	}
	for _, u := range []string{"alice", "Bob"} {
		if got := dirNames(t, fs, "/data/mail/example.com/"+u+"/tmp"); len(got) != 0 {
			t.Errorf("tmp of %s holds %q", u, got)
		}
	}
}

func TestDeliverMailNullSenderAndNoHeaderEnd(t *testing.T) {
	s, fs := newMemStore(t)
	if _, err := s.DeliverMail(context.Background(), "", []Address{{"u", "example.com"}}, strings.NewReader("Subject: bounce\r\nX-Folded: a\r\n\tb")); err != nil {
		t.Fatal(err)
	}
	got := readDelivered(t, fs, "/data/mail/example.com/u")
	if want := "Return-Path: <>\nDelivered-To: u@example.com\nSubject: bounce\nX-Folded: a\n\tb"; got != want {
		t.Errorf("copy %q, want %q", got, want)
	}
	for _, bad := range []string{"a@b\r\nX-Injected: 1", "<a@b>"} {
		if _, err := s.DeliverMail(context.Background(), bad, []Address{{"u", "example.com"}}, strings.NewReader("x\r\n")); err == nil {
			t.Errorf("sender %q accepted", bad)
		}
	}
}

func TestDeliverMailLoopRefused(t *testing.T) {
	cases := map[string]string{
		"plain":         "Delivered-To: alice@example.com\r\n",
		"case and <>":   "delivered-to:  <Alice@Example.COM>\r\n",
		"folded":        "Delivered-To:\r\n alice@example.com\r\n",
		"second header": "Delivered-To: other@example.org\r\nDelivered-To: alice@example.com\r\n",
	}
	for name, hdr := range cases {
		t.Run(name, func(t *testing.T) {
			s, fs := newMemStore(t)
			msg := "Received: x\r\n" + hdr + "Subject: loop\r\n\r\nbody\r\n"
			_, err := s.DeliverMail(context.Background(), "a@b.example", []Address{{"bob", "example.com"}, {"alice", "example.com"}}, strings.NewReader(msg))
			if !errors.Is(err, ErrMailLoop) {
				t.Fatalf("err = %v, want ErrMailLoop", err)
			}
			assertNothingVisible(t, fs, "/data/mail/example.com/bob", "/data/mail/example.com/alice")
		})
	}
	// The same field in the body, or for another mailbox, is no loop.
	s, _ := newMemStore(t)
	msg := "Delivered-To: other@example.com\r\n\r\nDelivered-To: alice@example.com\r\n"
	if _, err := s.DeliverMail(context.Background(), "a@b.example", []Address{{"alice", "example.com"}}, strings.NewReader(msg)); err != nil {
		t.Fatalf("not a loop: %v", err)
	}
}

// TestDeliverMailLongHeader: a header line longer than the scanner's
// buffer, and a header section beyond maxHeaderScan, pass through whole.
func TestDeliverMailLongHeader(t *testing.T) {
	s, fs := newMemStore(t)
	long := "X-Long: " + strings.Repeat("a", 10000) + "\r\n"
	huge := strings.Repeat("X-Many: "+strings.Repeat("b", 90)+"\r\n", maxHeaderScan/100+10)
	msg := long + huge + "Delivered-To: alice@example.com\r\n\r\nbody\r\n"
	if _, err := s.DeliverMail(context.Background(), "a@b.example", []Address{{"alice", "example.com"}}, strings.NewReader(msg)); err != nil {
		t.Fatalf("a Delivered-To past the scanned header is not looked at: %v", err)
	}
	got := readDelivered(t, fs, "/data/mail/example.com/alice")
	if want := "Return-Path: <a@b.example>\nDelivered-To: alice@example.com\n" + strings.ReplaceAll(msg, "\r\n", "\n"); got != want {
		t.Errorf("copy differs: len %d, want %d", len(got), len(want))
	}
}

// fullFs fails every write once budget octets were written in total, as a
// full filesystem does (ENOSPC, or EDQUOT for a quota).
type fullFs struct {
	afero.Fs
	budget *int64
	errno  syscall.Errno
}

func (f fullFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return file, err
	}
	return &fullFile{File: file, fs: f}, nil
}

type fullFile struct {
	afero.File
	fs fullFs
}

func (f *fullFile) Write(p []byte) (int, error) {
	if int64(len(p)) > *f.fs.budget {
		n, _ := f.File.Write(p[:*f.fs.budget])
		*f.fs.budget = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: f.fs.errno}
	}
	*f.fs.budget -= int64(len(p))
	return f.File.Write(p)
}

// TestDeliverMailFullDisk: a write failing for lack of space at any point
// (first copy, a later copy) leaves nothing in new/ and nothing in tmp/,
// and the error says ENOSPC (or EDQUOT) so SMTP can answer 452. With room
// again, the next delivery works.
func TestDeliverMailFullDisk(t *testing.T) {
	msg := "Subject: x\r\n\r\n" + strings.Repeat("line of body text\r\n", 100)
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		for _, budget := range []int64{0, 100, int64(len(msg)), int64(len(msg)) + 200} {
			b := budget
			mem := afero.NewMemMapFs()
			s := NewStore(fullFs{Fs: mem, budget: &b, errno: errno}, "/data/mail", Options{Hostname: "mx", Now: fixedClock})
			to := []Address{{"alice", "example.com"}, {"bob", "example.com"}}
			_, err := s.DeliverMail(context.Background(), "a@b.example", to, strings.NewReader(msg))
			if !errors.Is(err, errno) {
				t.Fatalf("%v budget %d: err = %v, want %v", errno, budget, err, errno)
			}
			assertNothingVisible(t, mem, "/data/mail/example.com/alice", "/data/mail/example.com/bob")
			b = 1 << 20
			if _, err := s.DeliverMail(context.Background(), "a@b.example", to, strings.NewReader(msg)); err != nil {
				t.Fatalf("%v budget %d: after space returned: %v", errno, budget, err)
			}
		}
	}
}

// TestDeliverMailRealTmpfs fills a real 1 MiB tmpfs: deliveries fail with
// ENOSPC and leave no partial file, POP3's view (List, Open) still works,
// and after space is freed delivery works again.
func TestDeliverMailRealTmpfs(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	s := NewStore(afero.NewOsFs(), dir, Options{Hostname: "mx"})
	to := []Address{{"alice", "example.com"}}
	small := "Subject: small\r\n\r\nhello\r\n"
	if _, err := s.DeliverMail(context.Background(), "a@b.example", to, strings.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 3000) // ~3 MB
	_, err := s.DeliverMail(context.Background(), "a@b.example", to, strings.NewReader(big))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("3 MB into 1 MiB: err = %v, want ENOSPC", err)
	}
	fs := afero.NewOsFs()
	if got := dirNames(t, fs, filepath.Join(dir, "example.com/alice/tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %q after ENOSPC", got)
	}
	// Fill the rest, so that even small writes fail.
	filler := filepath.Join(dir, "filler")
	fillUp(t, filler)
	if _, err := s.DeliverMail(context.Background(), "a@b.example", to, strings.NewReader(small)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("full: err = %v, want ENOSPC", err)
	}
	mb := mustOpen(t, s, "example.com", "alice")
	msgs := mustList(t, mb)
	if len(msgs) != 1 || !strings.Contains(readMessage(t, mb, msgs[0]), "hello") {
		t.Fatalf("the mailbox as POP3 sees it: %v", msgs)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeliverMail(context.Background(), "a@b.example", to, strings.NewReader(small)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	if n := len(mustList(t, mustOpen(t, s, "example.com", "alice"))); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// mountTmpfs mounts a tmpfs of size under a temporary directory; it needs
// root (CI runs as root) and skips otherwise.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; the afero full-disk tests cover the logic")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillUp writes path until the filesystem is full.
func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
