// Package connsrv runs the accept loop shared by popgate's small lookup
// servers (policy delegation, socket map): a cap on concurrent
// connections, backoff on temporary accept errors, and a Close that stops
// every listener and cuts every connection.
package connsrv

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("connsrv: server closed")

// Server serves connections with Handle, at most MaxConns at a time; a
// connection over the cap is closed at once with a log line (the asking
// MTA then applies its own default, e.g. Postfix's
// smtpd_policy_service_default_action).
type Server struct {
	Name     string // for log lines, e.g. "policy"
	MaxConns int
	Logger   *slog.Logger
	Handle   func(net.Conn) // owns the connection; Serve closes it after Handle returns

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Serve accepts on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Too many open files and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Logger.Warn(s.Name+" accept failed, retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.track(c) {
			s.Logger.Warn(s.Name+" connection refused", "remote", c.RemoteAddr().String(), "reason", "connection limit", "max", s.MaxConns)
			c.Close()
			continue
		}
		go func() {
			defer s.untrack(c)
			s.Handle(c)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers c, or reports false when the server is full or closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= s.MaxConns {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops every listener, cuts every connection and waits for their
// handlers. Lookups are short and the asking MTA retries, so nothing is
// drained.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
