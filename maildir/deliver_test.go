package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/spf13/afero"
)

const crlfMessage = "From: a@example.org\r\nSubject: hi\r\n\r\nline one\r\nline two\r\n"

var lfMessage = strings.ReplaceAll(crlfMessage, "\r\n", "\n")

func TestDeliverMemFsManyMailboxes(t *testing.T) {
	s, fs := newMemStore(t)
	to := []Address{
		{Local: "alice", Domain: "Example.COM"},
		{Local: "bob", Domain: "example.com"},
		{Local: "alice", Domain: "example.com"}, // same maildir as the first
	}
	names, err := s.Deliver(context.Background(), to, strings.NewReader(crlfMessage))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(to) {
		t.Fatalf("got %d names, want %d", len(names), len(to))
	}
	want := fmt.Sprintf("1732000000.M123456P%dQ1.mx.example.com,S=%d,W=%d", os.Getpid(), len(lfMessage), len(crlfMessage))
	for i, n := range names {
		if n != want {
			t.Errorf("names[%d] = %q, want %q", i, n, want)
		}
	}
	for _, local := range []string{"alice", "bob"} {
		dir := "/data/mail/example.com/" + local
		if got := dirNames(t, fs, dir+"/new"); len(got) != 1 || got[0] != want {
			t.Errorf("%s/new = %q, want [%q]", dir, got, want)
		}
		if got := readAll(t, fs, dir+"/new/"+want); got != lfMessage {
			t.Errorf("%s stored %q, want LF endings %q", dir, got, lfMessage)
		}
		if got := dirNames(t, fs, dir+"/tmp"); len(got) != 0 {
			t.Errorf("%s/tmp not cleaned: %q", dir, got)
		}
		for _, sub := range []string{"", "/cur", "/new", "/tmp"} {
			st, err := fs.Stat(dir + sub)
			if err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("%s%s: %v, mode %v; want dir 0700", dir, sub, err, st.Mode())
			}
		}
	}
}

func TestDeliverNamesAreUniqueAndOrdered(t *testing.T) {
	s, _ := newMemStore(t)
	to := []Address{{Local: "alice", Domain: "example.com"}}
	var delivered []string
	for i := range 12 {
		names, err := s.Deliver(context.Background(), to, strings.NewReader(fmt.Sprintf("Subject: %d\n\nbody\n", i)))
		if err != nil {
			t.Fatal(err)
		}
		delivered = append(delivered, names[0])
	}
	msgs := mustList(t, mustOpen(t, s, "example.com", "alice"))
	if len(msgs) != len(delivered) {
		t.Fatalf("listed %d, delivered %d", len(msgs), len(delivered))
	}
	for i, m := range msgs {
		if m.UID != delivered[i] {
			t.Errorf("message %d: UID %q, want %q (delivery order)", i, m.UID, delivered[i])
		}
	}
}

func TestDeliverLFInputStoredUnchanged(t *testing.T) {
	s, fs := newMemStore(t)
	names, err := s.Deliver(context.Background(), []Address{{"u", "example.com"}}, strings.NewReader(lfMessage))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(names[0], fmt.Sprintf(",S=%d,W=%d", len(lfMessage), len(crlfMessage))) {
		t.Errorf("name %q: wrong sizes", names[0])
	}
	if got := readAll(t, fs, "/data/mail/example.com/u/new/"+names[0]); got != lfMessage {
		t.Errorf("stored %q, want %q", got, lfMessage)
	}
}

func TestDeliverOsFsHardLinks(t *testing.T) {
	root := t.TempDir()
	s := NewStore(afero.NewOsFs(), root, Options{Hostname: "mx", Now: fixedClock})
	to := []Address{{"alice", "example.com"}, {"bob", "example.com"}, {"carol", "example.org"}}
	names, err := s.Deliver(context.Background(), to, strings.NewReader(crlfMessage))
	if err != nil {
		t.Fatal(err)
	}
	var first os.FileInfo
	for i, a := range to {
		p := filepath.Join(root, a.Domain, a.Local, "new", names[i])
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		if string(b) != lfMessage {
			t.Errorf("%s: content %q", p, b)
		}
		if first == nil {
			first = st
		} else if !os.SameFile(first, st) {
			t.Errorf("%s is not a hard link of the first copy", p)
		}
		if ents, _ := os.ReadDir(filepath.Join(root, a.Domain, a.Local, "tmp")); len(ents) != 0 {
			t.Errorf("tmp of %s not empty: %v", a.Local, ents)
		}
	}
	// Three names, one inode, and the tmp name gone (0: not knowable here).
	if nl := linkCount(first); nl != 0 && nl != 3 {
		t.Errorf("link count %d, want 3", nl)
	}
}

func TestDeliverBadInput(t *testing.T) {
	s, fs := newMemStore(t)
	ctx := context.Background()
	if _, err := s.Deliver(ctx, nil, strings.NewReader("x")); err == nil {
		t.Error("no mailboxes: no error")
	}
	_, err := s.Deliver(ctx, []Address{{"ok", "example.com"}, {"../evil", "example.com"}}, strings.NewReader("x"))
	if !errors.Is(err, ErrBadName) {
		t.Errorf("bad address: err %v, want ErrBadName", err)
	}
	if got := dirNames(t, fs, "/data/mail/example.com"); len(got) != 0 {
		t.Errorf("bad address: created %q", got)
	}
}

// assertNothingVisible checks that no message and no tmp file is left.
func assertNothingVisible(t *testing.T, fs afero.Fs, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		for _, sub := range []string{"new", "tmp"} {
			if got := dirNames(t, fs, filepath.Join(d, sub)); len(got) != 0 {
				t.Errorf("%s/%s holds %q after a failed delivery", d, sub, got)
			}
		}
	}
}

func TestDeliverReadErrorLeavesNothing(t *testing.T) {
	s, fs := newMemStore(t)
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("Subject: x\r\n\r\npartial"), iotest.ErrReader(boom))
	_, err := s.Deliver(context.Background(), []Address{{"u", "example.com"}}, r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapped %v", err, boom)
	}
	assertNothingVisible(t, fs, "/data/mail/example.com/u")
}

// cancelAtEOF cancels a context when the message has been read.
type cancelAtEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

func TestDeliverCanceled(t *testing.T) {
	s, fs := newMemStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Deliver(ctx, []Address{{"u", "example.com"}}, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled before: err %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Deliver(ctx, []Address{{"u", "example.com"}}, cancelAtEOF{strings.NewReader("x\n"), cancel})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled while reading: err %v", err)
	}
	assertNothingVisible(t, fs, "/data/mail/example.com/u")
}

func TestDeliverReadOnlyMaildirRollsBack(t *testing.T) {
	root := t.TempDir()
	alice := filepath.Join(root, "example.com", "alice")
	bob := filepath.Join(root, "example.com", "bob")
	for _, d := range []string{alice, bob} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(d, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	fs := readOnlyDirFs{Fs: afero.NewOsFs(), dir: filepath.Join(bob, "new")}
	s := NewStore(fs, root, Options{Hostname: "mx", Now: fixedClock})
	_, err := s.Deliver(context.Background(),
		[]Address{{"alice", "example.com"}, {"bob", "example.com"}}, strings.NewReader(crlfMessage))
	if !errors.Is(err, iofs.ErrPermission) {
		t.Fatalf("err = %v, want a wrapped permission error", err)
	}
	if !strings.Contains(err.Error(), "maildir: deliver") || !strings.Contains(err.Error(), bob) {
		t.Errorf("error %q lacks context", err)
	}
	// alice's copy was linked before bob failed: it must be gone again.
	assertNothingVisible(t, afero.NewOsFs(), alice, bob)
}

func TestDeliverReadOnlyMaildirChmod(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestDeliverReadOnlyMaildirRollsBack covers this")
	}
	root := t.TempDir()
	s := NewStore(afero.NewOsFs(), root, Options{Hostname: "mx", Now: fixedClock})
	dir := filepath.Join(root, "example.com", "u")
	if _, err := s.Deliver(context.Background(), []Address{{"u", "example.com"}}, strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "new"), 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "new"), 0o700) })
	_, err := s.Deliver(context.Background(), []Address{{"u", "example.com"}}, strings.NewReader("y\n"))
	if !errors.Is(err, iofs.ErrPermission) {
		t.Fatalf("err = %v, want permission error", err)
	}
	if got := dirNames(t, afero.NewOsFs(), filepath.Join(dir, "new")); len(got) != 1 {
		t.Errorf("new/ = %q, want only the first message", got)
	}
}

func TestDeliverNameCollisionRetries(t *testing.T) {
	// Two stores in one process with the same clock and hostname generate
	// the same first name; the second must pick another, not overwrite.
	fs := afero.NewMemMapFs()
	opts := Options{Hostname: "mx", Now: fixedClock}
	s1, s2 := NewStore(fs, "/m", opts), NewStore(fs, "/m", opts)
	to := []Address{{"u", "example.com"}}
	n1, err := s1.Deliver(context.Background(), to, strings.NewReader("one\n"))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := s2.Deliver(context.Background(), to, strings.NewReader("two\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n1[0] == n2[0] {
		t.Fatalf("both deliveries named %q", n1[0])
	}
	if got := readAll(t, fs, "/m/example.com/u/new/"+n1[0]); got != "one\n" {
		t.Errorf("first message overwritten: %q", got)
	}
	if got := readAll(t, fs, "/m/example.com/u/new/"+n2[0]); got != "two\n" {
		t.Errorf("second message: %q", got)
	}
}

func TestDeliverNameFormat(t *testing.T) {
	s := NewStore(afero.NewMemMapFs(), "/m", Options{Hostname: "mail/host:x,y", Now: fixedClock})
	names, err := s.Deliver(context.Background(), []Address{{"u", "example.com"}}, strings.NewReader("a\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^1732000000\.M123456P[0-9]+Q1\.mail_host_x_y,S=2,W=3$`)
	if !re.MatchString(names[0]) {
		t.Errorf("name %q does not match %v", names[0], re)
	}
	ni := parseName(names[0])
	if ni.uid != names[0] || ni.wsize != 3 || sizeField(ni.base, "S=") != 2 {
		t.Errorf("parse of own name: %+v", ni)
	}
}

func TestDeliverConcurrent(t *testing.T) {
	root := t.TempDir()
	s := NewStore(afero.NewOsFs(), root, Options{Hostname: "mx", Now: fixedClock})
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			to := []Address{{"alice", "example.com"}, {fmt.Sprintf("u%d", i%3), "example.com"}}
			_, err := s.Deliver(context.Background(), to, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	msgs := mustList(t, mustOpen(t, s, "example.com", "alice"))
	if len(msgs) != n {
		t.Fatalf("alice has %d messages, want %d", len(msgs), n)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.UID] {
			t.Fatalf("duplicate UID %q", m.UID)
		}
		seen[m.UID] = true
	}
}

// TestDeliverAfterMaildirRemoved: a maildir deleted behind the Store's
// back (after it was seen complete) is made again by the next delivery.
func TestDeliverAfterMaildirRemoved(t *testing.T) {
	for _, sub := range []string{"", subNew} {
		fs := afero.NewOsFs()
		root := t.TempDir()
		s := NewStore(fs, root, Options{Hostname: "h"})
		rcpts := []Address{{Local: "alice", Domain: "example.com"}, {Local: "bob", Domain: "example.com"}}
		if _, err := s.Deliver(context.Background(), rcpts, strings.NewReader("one\r\n")); err != nil {
			t.Fatal(err)
		}
		victim := filepath.Join(root, "example.com", "alice")
		if sub == "" {
			victim = filepath.Join(root, "example.com", "bob", subNew) // a later mailbox's new/
		}
		if err := os.RemoveAll(victim); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Deliver(context.Background(), rcpts, strings.NewReader("two\r\n")); err != nil {
			t.Fatalf("removed %s: deliver: %v", victim, err)
		}
		for _, u := range []string{"alice", "bob"} {
			mb, _ := s.Open("example.com", u)
			msgs, err := mb.List()
			if err != nil || len(msgs) == 0 {
				t.Errorf("removed %s: %s has %d messages, %v", victim, u, len(msgs), err)
			}
		}
	}
}
