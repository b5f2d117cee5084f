package auth

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log output as text lines (slog's text format).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the logged lines whose msg is exactly msg.
func (b *logBuffer) lines(msg string) []string {
	var out []string
	for l := range strings.SplitSeq(b.String(), "\n") {
		if strings.Contains(l, "msg=\""+msg+"\"") || strings.Contains(l, "msg="+msg+" ") {
			out = append(out, l)
		}
	}
	return out
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// writeUsers writes a users file on fs and stamps it with the clock's
// time, as an editor would.
func writeUsers(t testing.TB, fs afero.Fs, path, content string, clk *fakeClock) {
	t.Helper()
	if err := afero.WriteFile(fs, path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fs.Chtimes(path, clk.now(), clk.now()); err != nil {
		t.Fatal(err)
	}
}

// noLimits is a limiter configuration that never throttles.
var noLimits = LimiterConfig{}

type testService struct {
	*Service
	users *Users
	clk   *fakeClock
	fs    afero.Fs
	log   *logBuffer
}

const usersPath = "/etc/popgate/users"

func newTestService(t testing.TB, content string, cfg LimiterConfig) *testService {
	t.Helper()
	clk := newFakeClock()
	fs := afero.NewMemMapFs()
	writeUsers(t, fs, usersPath, content, clk)
	logger, buf := newTestLogger()
	users, err := NewUsers(fs, usersPath, clk.now, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &testService{
		Service: NewService(users, NewLimiter(cfg, clk.now), logger),
		users:   users, clk: clk, fs: fs, log: buf,
	}
}

func (s *testService) auth(ip, user, pw string) (string, error) {
	return s.Authenticate(context.Background(), mustAddr(ip), user, pw)
}
