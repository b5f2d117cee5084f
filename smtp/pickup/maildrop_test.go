package pickup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play a local program run as another user
// (see runAsNobody): with PICKUP_HELPER set it submits one message and exits.
func TestMain(m *testing.M) {
	if mode := os.Getenv("PICKUP_HELPER"); mode != "" {
		os.Exit(helper(mode, os.Getenv("PICKUP_TARGET")))
	}
	os.Exit(m.Run())
}

func helper(mode, target string) int {
	msg := "Subject: from helper\n\nhello\n"
	req := Request{Rcpts: []string{"alice"}, Size: int64(len(msg))}
	var err error
	switch mode {
	case "socket":
		_, err = Send(context.Background(), target, req, strings.NewReader(msg), 10*time.Second)
	case "maildrop":
		_, err = WriteMaildrop(target, req, strings.NewReader(msg))
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func maildropDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(shortDir(t), "maildrop")
	if err := EnsureMaildrop(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeDrop(t *testing.T, dir string, rcpts []string, msg string) string {
	t.Helper()
	name, err := WriteMaildrop(dir, Request{Rcpts: rcpts, Size: int64(len(msg))}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestMaildropWriteAndDrain(t *testing.T) {
	s, k := newTestServer(t, nil)
	dir := maildropDir(t)
	st, err := os.Stat(dir)
	if err != nil || st.Mode() != os.ModeDir|MaildropMode {
		t.Fatalf("maildrop mode %v, %v; want %v", st.Mode(), err, os.ModeDir|MaildropMode)
	}
	a := writeDrop(t, dir, []string{"alice"}, "Subject: one\n\n1\n")
	writeDrop(t, dir, []string{"x@remote.example"}, "Subject: two\n\n2\n")
	fst, err := os.Stat(filepath.Join(dir, a))
	if err != nil || fst.Mode().Perm() != completeMode {
		t.Fatalf("maildrop file mode %v, %v", fst.Mode(), err)
	}
	n, err := s.Drain(context.Background(), dir)
	if err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v; want 2", n, err)
	}
	if left := names(t, dir); len(left) != 0 {
		t.Errorf("files left after delivery: %v", left)
	}
	ds, sp := k.deliveries(), k.spools()
	if len(ds) != 1 || len(sp) != 1 {
		t.Fatalf("delivered %d, spooled %d", len(ds), len(sp))
	}
	want := fmt.Sprintf("(popgate, from userid %d ", os.Getuid())
	if !strings.Contains(ds[0].msg, want) || !strings.Contains(ds[0].msg, " via maildrop)") {
		t.Errorf("Received does not name the file's owner:\n%s", ds[0].msg)
	}
	if n, err := s.Drain(context.Background(), dir); n != 0 || err != nil {
		t.Errorf("second Drain = %d, %v", n, err)
	}
}

func TestMaildropTemporaryFailureKeepsFile(t *testing.T) {
	s, k := newTestServer(t, nil)
	dir := maildropDir(t)
	name := writeDrop(t, dir, []string{"alice"}, "x\n")
	k.setFail(errors.New("disk full"))
	if n, err := s.Drain(context.Background(), dir); n != 0 || err == nil {
		t.Fatalf("Drain with failing delivery = %d, %v", n, err)
	}
	if got := names(t, dir); len(got) != 1 || got[0] != name {
		t.Fatalf("file not kept for the next round: %v", got)
	}
	k.setFail(nil)
	if n, err := s.Drain(context.Background(), dir); n != 1 || err != nil {
		t.Fatalf("Drain after recovery = %d, %v", n, err)
	}
	if len(k.deliveries()) != 1 {
		t.Fatal("message not delivered after recovery")
	}
}

func TestMaildropRefusesBadFiles(t *testing.T) {
	s, k := newTestServer(t, nil)
	dir := maildropDir(t)
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	good := "{\"rcpts\":[\"alice\"],\"size\":2}\nx\n"
	write("m.garbage", "not a request\nbody", completeMode)
	write("m.short", "{\"rcpts\":[\"alice\"],\"size\":50}\nx\n", completeMode)
	write("m.long", "{\"rcpts\":[\"alice\"],\"size\":1}\nxyz\n", completeMode)
	write("m.unknown", "{\"rcpts\":[\"ghost\"],\"size\":2}\nx\n", completeMode)
	write("m.incomplete", good, 0o600) // still being written: left alone
	write("other", good, completeMode) // not a maildrop name: left alone
	secret := filepath.Join(shortDir(t), "secret")
	if err := os.WriteFile(secret, []byte(good), 0o744); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "m.symlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, filepath.Join(dir, "m.hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "m.fifo"), 0o744); err != nil {
		t.Fatal(err)
	}
	n, err := s.Drain(context.Background(), dir)
	if n != 0 || err != nil {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if len(k.spools()) != 0 {
		t.Fatal("a refused file was queued")
	}
	// The owner of each plain refused file (garbage, short, long, unknown
	// recipient) is told; a symlink, hard link or FIFO gets no notice.
	ds := k.deliveries()
	if len(ds) != 4 {
		t.Fatalf("%d deliveries, want 4 notices", len(ds))
	}
	var notices []string
	for _, d := range ds {
		if !strings.Contains(d.msg, "Subject: Undelivered mail: ") || !strings.Contains(d.msg, "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>") {
			t.Errorf("not a notice:\n%s", d.msg)
		}
		notices = append(notices, d.msg)
	}
	if all := strings.Join(notices, "\n"); !strings.Contains(all, "ghost@example.com: user unknown") || !strings.Contains(all, "as bad.m.unknown.") {
		t.Errorf("notices do not say what and where:\n%s", all)
	}
	got := strings.Join(names(t, dir), " ")
	want := "bad.m.fifo bad.m.garbage bad.m.hardlink bad.m.long bad.m.short bad.m.symlink bad.m.unknown m.incomplete other"
	if got != want {
		t.Errorf("maildrop after Drain:\n got %s\nwant %s", got, want)
	}
}

// runAsNobody runs a copy of the test binary as uid/gid 65534 in helper
// mode. Only root can do that.
func runAsNobody(t *testing.T, mode, target string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(shortDir(t), "helper")
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PICKUP_HELPER=" + mode, "PICKUP_TARGET=" + target}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, b)
	}
}

func TestPeerCredOfAnotherUser(t *testing.T) {
	s, k := newTestServer(t, nil)
	path := serveSocket(t, s)
	if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	runAsNobody(t, "socket", path)
	ds := k.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	if !strings.HasPrefix(ds[0].msg, "Received: by mx.example.com (popgate, from userid 65534 user65534 via socket)") {
		t.Errorf("Received does not name uid 65534:\n%s", ds[0].msg)
	}
	if !strings.Contains(ds[0].msg, "From: <user65534@example.com>") {
		t.Errorf("default sender is not the caller:\n%s", ds[0].msg)
	}
}

func TestMaildropOfAnotherUser(t *testing.T) {
	s, k := newTestServer(t, nil)
	dir := maildropDir(t)
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	runAsNobody(t, "maildrop", dir)
	if n, err := s.Drain(context.Background(), dir); n != 1 || err != nil {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	ds := k.deliveries()
	if len(ds) != 1 || !strings.Contains(ds[0].msg, "from userid 65534 user65534 via maildrop") {
		t.Fatalf("deliveries: %+v", ds)
	}
}

// TestRunPicksUpNewFiles: with the server running, a file completed in the
// maildrop is delivered at once (inotify), not at the next poll, which
// here is an hour away.
func TestRunPicksUpNewFiles(t *testing.T) {
	s, k := newTestServer(t, nil)
	dir := maildropDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, dir, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 1; i <= 3; i++ {
		writeDrop(t, dir, []string{"alice"}, fmt.Sprintf("Subject: %d\n\nx\n", i))
		deadline := time.Now().Add(10 * time.Second)
		for len(k.deliveries()) < i {
			if time.Now().After(deadline) {
				t.Fatalf("message %d not picked up; maildrop: %v", i, names(t, dir))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
