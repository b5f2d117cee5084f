package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// privdropChildEnv names the root-owned file the re-executed test binary
// must fail to write after dropping to nobody.
const privdropChildEnv = "POPGATE_PRIVDROP_CHILD_FILE"

// TestPrivDropToNobody re-executes the test binary as root: the child
// binds a port below 1024, drops to nobody, and proves that it still
// serves on that port, cannot write a root-owned 0600 file, cannot bind
// another low port and cannot get root back.
func TestPrivDropToNobody(t *testing.T) {
	if path := os.Getenv(privdropChildEnv); path != "" {
		privdropChild(path)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("privilege drop needs root: run as root (CI does) to exercise it")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPrivDropToNobody$", "-test.count=1")
	cmd.Env = append(os.Environ(), privdropChildEnv+"="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "privdrop-child: uid=65534 euid=65534 gid=65534 groups=[65534] ok") {
		t.Fatalf("child did not report the dropped ids:\n%s", out)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "root only\n" {
		t.Errorf("secret changed: %q %v", b, err)
	}
}

// privdropChild is the child's side of TestPrivDropToNobody; it exits
// non-zero with a message on any failure.
func privdropChild(secret string) {
	fail := func(format string, args ...any) {
		fmt.Printf("privdrop-child: FAIL "+format+"\n", args...)
		os.Exit(3)
	}
	ln, port := listenLowPort(0)
	if ln == nil {
		fail("no free port below 1024 as root")
	}
	defer ln.Close()
	if err := dropPrivileges("nobody", ""); err != nil {
		fail("drop: %v", err)
	}
	if f, err := os.OpenFile(secret, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.Close()
		fail("wrote the root-owned 0600 file %s", secret)
	} else if !errors.Is(err, os.ErrPermission) {
		fail("open %s: %v, want permission denied", secret, err)
	}
	if _, err := os.ReadFile(secret); !errors.Is(err, os.ErrPermission) {
		fail("read %s: %v, want permission denied", secret, err)
	}
	if ln2, p := listenLowPort(port); ln2 != nil {
		ln2.Close()
		fail("bound port %d after the drop", p)
	}
	// The socket bound as root still serves.
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		fail("accept on the low port after the drop: %v", err)
	}
	c.Close()
	if err := dropPrivileges("daemon", ""); err == nil || !strings.Contains(err.Error(), "needs root") {
		fail("drop to another user as nobody: %v, want a needs-root error", err)
	}
	if err := dropPrivileges("nobody", ""); err != nil {
		fail("drop to nobody again as nobody: %v, want nothing to do", err)
	}
	if err := syscall.Setuid(0); err == nil {
		fail("setuid(0) succeeded after the drop")
	}
	groups, _ := os.Getgroups()
	fmt.Printf("privdrop-child: uid=%d euid=%d gid=%d groups=%v ok\n", os.Getuid(), os.Geteuid(), os.Getgid(), groups)
}

// listenLowPort binds the first free port in 900..1023 other than skip;
// it returns nil when none can be bound.
func listenLowPort(skip int) (net.Listener, int) {
	for p := 1023; p >= 900; p-- {
		if p == skip {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			return ln, p
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, 0 // not allowed at all: no point trying the rest
		}
	}
	return nil, 0
}

// TestPrivDropErrors covers what fails before any id changes, so it is
// safe to run in the test process itself, as root or not.
func TestPrivDropErrors(t *testing.T) {
	for _, tc := range []struct{ user, group, want string }{
		{"", "", "no user given"},
		{"no-such-user-popgate", "", `unknown user "no-such-user-popgate"`},
		{"nobody", "no-such-group-popgate", `unknown group "no-such-group-popgate"`},
		{"4000000", "", "is not in /etc/passwd, so its group must be given"},
		{"-5", "", `unknown user "-5"`},
		{"nobody", "-5", `unknown group "-5"`},
	} {
		err := dropPrivileges(tc.user, tc.group)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("dropPrivileges(%q, %q) = %v, want %q", tc.user, tc.group, err, tc.want)
		}
	}
	// Root as the target is refused, as root or not, before any change.
	for _, u := range []string{"root", "0"} {
		if err := dropPrivileges(u, ""); err == nil || !strings.Contains(err.Error(), "is root") {
			t.Errorf("dropPrivileges(%q) = %v, want an is-root error", u, err)
		}
	}
}

// TestPrivDropLookup resolves names and bare numbers the way a scratch
// image (no /etc/passwd) needs.
func TestPrivDropLookup(t *testing.T) {
	for _, tc := range []struct {
		user, group string
		uid, gid    int
	}{
		{"nobody", "", 65534, 65534},
		{"nobody", "nogroup", 65534, 65534},
		{"65534", "", 65534, 65534},
		{"65532", "65532", 65532, 65532}, // the image's USER, not in /etc/passwd
		{"root", "65532", 0, 65532},
	} {
		uid, gid, err := lookupIDs(tc.user, tc.group)
		if err != nil || uid != tc.uid || gid != tc.gid {
			t.Errorf("lookupIDs(%q, %q) = %d, %d, %v; want %d, %d", tc.user, tc.group, uid, gid, err, tc.uid, tc.gid)
		}
	}
}

// privdropServerEnv names the data directory of the re-executed server.
const privdropServerEnv = "POPGATE_PRIVDROP_SERVER_DIR"

// TestPrivDropServer re-executes the test binary as root to run a whole
// popgate the way `serve` does with process.user: assemble as root with
// POP3 on a port below 1024, hand data_dir over, drop to nobody, then
// serve. Logins, grants, relaying into the queue, local delivery into
// the maildir and the grants state at shutdown must all work as nobody.
func TestPrivDropServer(t *testing.T) {
	if dir := os.Getenv(privdropServerEnv); dir != "" {
		privdropServerChild(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("privilege drop needs root: run as root (CI does) to exercise it")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	// nobody must be able to reach data_dir through the test's directories.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPrivDropServer$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), privdropServerEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "privdrop-server: served as 65534:65534") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// What the server wrote after the drop belongs to nobody.
	for _, p := range []string{"state/grants", "access.db", "mail/example.com/alice/new", "queue", "users", "users.lock"} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Errorf("%s is owned by %d, want nobody", p, uid)
		}
	}
}

func privdropServerChild(t *testing.T, dir string) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, port := listenLowPort(0)
	if ln == nil {
		t.Fatal("no free port below 1024")
	}
	ln.Close()
	cfg := testConfig(t, dir)
	cfg.POP3.Listen = []string{fmt.Sprintf("127.0.0.1:%d", port)}
	// As left by a `popgate user add` run as root.
	if err := os.WriteFile(filepath.Join(dir, "users.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := assemble(cfg, options{logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := handOverDataDir(cfg, "nobody", ""); err != nil {
		t.Fatal(err)
	}
	if err := dropPrivileges("nobody", ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, nil) }()
	pop, mx := s.addr("pop3.listen"), s.addr("smtp.listen")
	popLogin(t, "127.0.0.2", pop, "alice@example.com", "alice's secret")
	if got := trySend(t, "127.0.0.2", mx, "alice@example.com", "friend@remote.example"); !strings.HasPrefix(got, "250") {
		t.Fatalf("relay after login: %q", got)
	}
	if got := trySend(t, "127.0.0.4", mx, "x@remote.example", "alice@example.com"); !strings.HasPrefix(got, "250") {
		t.Fatalf("local delivery: %q", got)
	}
	waitFor(t, "the mirror", func() bool { return mapValue(t, cfg.Relay.Mirror[0].Path, "connect:127.0.0.2") == "RELAY" })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("errors after the drop:\n%s", logs.String())
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "mail", "example.com", "alice", "new")); err != nil || len(entries) != 1 {
		t.Fatalf("maildir: %v %v", entries, err)
	}
	fmt.Printf("privdrop-server: served as %d:%d\n", os.Geteuid(), os.Getegid())
}

// syncWriter serialises writes from the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestPrivDropHandOverChecks covers handOverDataDir's refusals without
// changing any owner: an unknown user, and a users file outside data_dir
// that the user could not read.
func TestPrivDropHandOverChecks(t *testing.T) {
	dir := t.TempDir()
	cfg := defaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	if err := handOverDataDir(cfg, "no-such-user-popgate", ""); err == nil || !strings.Contains(err.Error(), "unknown user") {
		t.Errorf("unknown user: %v", err)
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Users.File = users
	if err := handOverDataDir(cfg, "nobody", ""); err == nil || !strings.Contains(err.Error(), "is not readable by 65534:65534") {
		t.Errorf("unreadable users file: %v", err)
	}
	for _, tc := range []struct {
		dir, path string
		in        bool
	}{
		{"/var/lib/popgate", "/var/lib/popgate/users", true},
		{"/var/lib/popgate", "/var/lib/popgate", true},
		{"/var/lib/popgate", "/var/lib/popgate/../users", false},
		{"/var/lib/popgate", "/var/lib/popgate2/users", false},
		{"/var/lib/popgate", "/etc/popgate/users", false},
		{"./data", "data/users", true},
		{"/var/lib/popgate", "/var/lib/popgate/..users", true},
	} {
		if got := inside(tc.dir, tc.path); got != tc.in {
			t.Errorf("inside(%q, %q) = %v", tc.dir, tc.path, got)
		}
	}
}
