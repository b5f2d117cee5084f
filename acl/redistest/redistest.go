// Package redistest starts a real redis-server (Debian's redis-server
// package) for interop tests, on its own loopback port and directory, and
// stops it by pid; its Proxy cuts one client off the server (a network
// partition) while others keep it.
package redistest

import (
	"bytes"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server process; it can be stopped and started again
// on the same port, without persistence (--save ” --appendonly no), so a
// restart loses every key as a crashed cache would.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	pass string // --requirepass; "" for none

	mu  sync.Mutex
	cmd *exec.Cmd
	out lockedBuffer
}

// lockedBuffer collects the server's output, written by exec's goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs redis-server on a free loopback port; it is stopped when the
// test ends.
func Start(t testing.TB) *Server { return StartWithPassword(t, "") }

// StartWithPassword is Start with --requirepass password.
func StartWithPassword(t testing.TB, password string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (run .ci/install-peers.sh)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, Port: port, dir: t.TempDir(), pass: password}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the redis:// URL of database db.
func (s *Server) URL(db int) string {
	return "redis://127.0.0.1:" + strconv.Itoa(s.Port) + "/" + strconv.Itoa(db)
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Restart starts the server (again) and waits until it accepts
// connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		s.t.Fatal("redistest: already running")
	}
	args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "no"}
	if s.pass != "" {
		args = append(args, "--requirepass", s.pass)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatal(err)
	}
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not listen on %s: %s", s.Addr(), s.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) output() string { return s.out.String() }

// Kill stops the server with SIGKILL, by pid, and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop stops the server with SIGTERM, by pid, and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	_ = cmd.Wait()
}
