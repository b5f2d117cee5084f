package pickup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp"
)

// sink records what the server delivers and spools, and knows the local
// users alice and root of example.com (postmaster is an alias of root).
type sink struct {
	mu        sync.Mutex
	delivered []delivery
	spooled   []delivery
	failWith  error // Deliver and Spool fail with it when set
}

type delivery struct {
	from  string
	to    []string
	msg   string
	boxes []string
}

func (k *sink) Resolve(_ context.Context, addr string) ([]string, error) {
	switch strings.ToLower(addr) {
	case "alice@example.com", "root@example.com":
		return []string{strings.ToLower(addr)}, nil
	case "postmaster@example.com":
		return []string{"root@example.com"}, nil
	}
	return nil, fmt.Errorf("%s: %w", addr, smtp.ErrNoSuchUser)
}

func (k *sink) Deliver(_ context.Context, _ string, boxes []string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failWith != nil {
		return k.failWith
	}
	k.delivered = append(k.delivered, delivery{boxes: boxes, msg: string(b)})
	return nil
}

func (k *sink) Spool(_ context.Context, from string, to []string, r io.Reader) (string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failWith != nil {
		return "", k.failWith
	}
	k.spooled = append(k.spooled, delivery{from: from, to: to, msg: string(b)})
	return "Q1", nil
}

func (k *sink) setFail(err error) {
	k.mu.Lock()
	k.failWith = err
	k.mu.Unlock()
}

func (k *sink) deliveries() []delivery {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]delivery(nil), k.delivered...)
}

func (k *sink) spools() []delivery {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]delivery(nil), k.spooled...)
}

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func newTestServer(t testing.TB, mod func(*Config)) (*Server, *sink) {
	t.Helper()
	k := &sink{}
	cfg := Config{
		Hostname:        "mx.example.com",
		LocalDomains:    []string{"example.com"},
		MaxMessageBytes: 4096,
		MaxRecipients:   5,
		TempDir:         t.TempDir(),
		Now:             func() time.Time { return testNow },
		LookupUser: func(uid uint32) string {
			if uid == 0 {
				return "root"
			}
			return fmt.Sprintf("user%d", uid)
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewServer(cfg, Deps{Recipients: k, Deliverer: k, Spooler: k})
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// shortDir is a temporary directory with a short path: a Unix socket path
// must fit in 108 octets.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serveSocket serves s on a real Unix socket and returns its path.
func serveSocket(t testing.TB, s *Server) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "submit.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return path
}

func send(t *testing.T, path string, req Request, msg string) (string, error) {
	t.Helper()
	req.Size = int64(len(msg))
	return Send(context.Background(), path, req, strings.NewReader(msg), 10*time.Second)
}

func codeOf(err error) int {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return -1
}

func ptr(s string) *string { return &s }

// rawExchange writes raw bytes to the socket, half-closes, and returns
// the decoded reply.
func rawExchange(t *testing.T, path string, raw []byte) Reply {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.Write(raw)
	_ = c.(*net.UnixConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	r, err := decodeReply(b)
	if err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return r
}

func decodeReply(b []byte) (Reply, error) {
	var r Reply
	line, _, _ := bytes.Cut(b, []byte("\n"))
	err := jsonUnmarshal(line, &r)
	return r, err
}
