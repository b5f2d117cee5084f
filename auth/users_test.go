package auth

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestNewUsersErrors(t *testing.T) {
	t.Parallel()
	fs := afero.NewMemMapFs()
	logger, _ := newTestLogger()
	clk := newFakeClock()
	if _, err := NewUsers(fs, "/missing", clk.now, logger); err == nil || !strings.Contains(err.Error(), "/missing") {
		t.Errorf("missing file: %v", err)
	}
	writeUsers(t, fs, "/bad", "a@b:{PLAIN}x\nbroken\n", clk)
	_, err := NewUsers(fs, "/bad", clk.now, logger)
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "/bad") {
		t.Errorf("broken file: %v, want line 2 and the path", err)
	}
}

func TestUsersReloadOnChange(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "alice@example.com:{PLAIN}one\n", noLimits)
	if _, err := s.auth("192.0.2.1", "alice@example.com", "one"); err != nil {
		t.Fatalf("first password: %v", err)
	}

	s.clk.advance(500 * time.Millisecond)
	writeUsers(t, s.fs, usersPath, "alice@example.com:{PLAIN}two\nbob@example.com:{PLAIN}b\n", s.clk)
	// Within a second of the last check the old file is still in force.
	if _, err := s.auth("192.0.2.1", "alice@example.com", "two"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("new password before the check interval: %v", err)
	}
	s.clk.advance(500 * time.Millisecond)
	if _, err := s.auth("192.0.2.1", "alice@example.com", "two"); err != nil {
		t.Fatalf("new password after 1 s: %v", err)
	}
	if _, err := s.auth("192.0.2.1", "alice@example.com", "one"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password after reload: %v", err)
	}
	if !s.UserExists("BOB@example.com") {
		t.Error("added user missing after reload")
	}
	if got := s.log.lines("users file reloaded"); len(got) != 1 {
		t.Errorf("reload log lines %q", got)
	}

	// A broken version keeps the old table and is reported once.
	s.clk.advance(time.Second)
	writeUsers(t, s.fs, usersPath, "alice@example.com:{PLAIN}three\nno colon here\n", s.clk)
	s.clk.advance(time.Second)
	if _, err := s.auth("192.0.2.1", "alice@example.com", "two"); err != nil {
		t.Fatalf("old password with a broken new file: %v", err)
	}
	s.clk.advance(time.Second)
	if _, err := s.auth("192.0.2.1", "alice@example.com", "three"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("password from the broken file: %v", err)
	}
	fails := s.log.lines("users file reload failed")
	if len(fails) != 1 || !strings.Contains(fails[0], "line 2") {
		t.Errorf("reload failure logged %d times: %q", len(fails), fails)
	}

	// Fixed again: takes effect.
	writeUsers(t, s.fs, usersPath, "alice@example.com:{PLAIN}four\n", s.clk)
	s.clk.advance(time.Second)
	if _, err := s.auth("192.0.2.1", "alice@example.com", "four"); err != nil {
		t.Fatalf("password from the fixed file: %v", err)
	}
	if s.UserExists("bob@example.com") {
		t.Error("removed user still there")
	}

	// A file that disappears keeps the last good table; the error is
	// logged once however long it lasts, and the file is picked up again.
	if err := s.fs.Remove(usersPath); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.clk.advance(time.Second)
		if _, err := s.auth("192.0.2.1", "alice@example.com", "four"); err != nil {
			t.Fatalf("after the file vanished: %v", err)
		}
	}
	if fails := s.log.lines("users file reload failed"); len(fails) != 2 || !strings.Contains(fails[1], "not exist") {
		t.Errorf("reload failures logged: %q", fails)
	}
	writeUsers(t, s.fs, usersPath, "alice@example.com:{PLAIN}five\n", s.clk)
	s.clk.advance(time.Second)
	if _, err := s.auth("192.0.2.1", "alice@example.com", "five"); err != nil {
		t.Fatalf("file back: %v", err)
	}
}

// TestUsersUnreadableRetried: a version that cannot be read (not one that
// does not parse) is tried again at the next check, with the same stat.
func TestUsersUnreadableRetried(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	base := afero.NewMemMapFs()
	writeUsers(t, base, "/users", "alice@example.com:{PLAIN}one\n", clk)
	fs := &flakyOpenFs{Fs: base}
	logger, buf := newTestLogger()
	users, err := NewUsers(fs, "/users", clk.now, logger)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Second)
	writeUsers(t, base, "/users", "alice@example.com:{PLAIN}two\n", clk)
	fs.fail = true
	if name, ok, _ := users.verify("alice@example.com", "one"); !ok || name != "alice@example.com" {
		t.Fatal("old table lost while the file is unreadable")
	}
	fs.fail = false
	clk.advance(time.Second)
	if _, ok, _ := users.verify("alice@example.com", "two"); !ok {
		t.Fatal("readable again, same mtime and size: not reloaded")
	}
	if n := len(buf.lines("users file reload failed")); n != 1 {
		t.Errorf("%d failures logged, want 1", n)
	}
}

// flakyOpenFs fails Open while fail is set (Stat still works), like a
// permission problem.
type flakyOpenFs struct {
	afero.Fs
	fail bool
}

func (f *flakyOpenFs) Open(name string) (afero.File, error) {
	if f.fail {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrPermission}
	}
	return f.Fs.Open(name)
}

func TestUsersPlainWarningOncePerLoad(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "a@x.org:{PLAIN}1\nb@x.org:{PLAIN}2\n", noLimits)
	for range 3 {
		s.UserExists("a@x.org")
	}
	w := s.log.lines("users file has plaintext passwords")
	if len(w) != 1 || !strings.Contains(w[0], "count=2") || !strings.Contains(w[0], "lines=\"[1 2]\"") {
		t.Errorf("warnings %q", w)
	}
	s.clk.advance(time.Second)
	writeUsers(t, s.fs, usersPath, "a@x.org:{PLAIN}1\n", s.clk)
	s.clk.advance(time.Second)
	s.UserExists("a@x.org")
	if w := s.log.lines("users file has plaintext passwords"); len(w) != 2 {
		t.Errorf("after reload: %d warnings, want 2", len(w))
	}
}

// TestUsersMD5CryptWarning: MD5-crypt hashes load (migrated users can log
// in) with a warning naming their lines; other crypt schemes get none.
func TestUsersMD5CryptWarning(t *testing.T) {
	t.Parallel()
	s := newTestService(t, "a@x.org:{MD5-CRYPT}$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8.\n"+
		"b@x.org:{CRYPT}$y$j75$pE4qh5RGOS3sC2mZ06ZQv.$SBOEw/TE/MXJBzydUrI1PlMcUZ.ZmJg1Dv8blT5kJV/\n"+
		"c@x.org:$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8.\n", noLimits)
	w := s.log.lines("users file has weak MD5-crypt passwords")
	if len(w) != 1 || !strings.Contains(w[0], "count=2") || !strings.Contains(w[0], "lines=\"[1 3]\"") {
		t.Errorf("warnings %q", w)
	}
	for _, user := range []string{"a@x.org", "b@x.org", "c@x.org"} {
		if _, err := s.Authenticate(context.Background(), mustAddr("192.0.2.1"), user, "correct horse"); err != nil {
			t.Errorf("%s: %v", user, err)
		}
	}
}
