package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

// waitFor polls cond (a state another goroutine reaches) for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *router) open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

func TestCachedConnectionCarriesManyMessages(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, func(c *Config) { c.MaxPerDestination = 1 })
	const n = 5
	ids := map[string]bool{}
	for i := range n {
		ids[h.enqueue(t, "alice@local.test", []string{fmt.Sprintf("r%d@remote.test", i)}, testMsg)] = true
	}
	h.run(t)
	got := map[string]bool{}
	for range n {
		m := s.Wait(t)
		if got[m.To[0]] {
			t.Errorf("%s received twice", m.To[0])
		}
		got[m.To[0]] = true
	}
	for range n {
		h.waitAttempt(t)
	}
	if sessions, _, rcpts := s.Stats(); sessions != 1 || len(rcpts[0]) != n {
		t.Errorf("sink saw %d sessions with recipients %v; want 1 session carrying %d messages", sessions, rcpts, n)
	}
	if d := h.router.dialed(); len(d) != 1 {
		t.Errorf("dialled %v, want one connection", d)
	}
	if q := h.queued(t); q != 0 {
		t.Errorf("%d messages still queued", q)
	}
	if got, want := len(got), n; got != want {
		t.Errorf("sink received %d distinct messages, want %d", got, want)
	}
}

func TestCachedConnectionDroppedIsReplaced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop func(s *sink)
	}{
		{"closed by peer", func(s *sink) { s.DropAll() }},
		{"421 to MAIL", func(s *sink) { s.Mail421.Store(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := smtptest.NewSink(t)
			h := newHarness(t, s, nil)
			h.run(t)
			first := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
			s.Wait(t)
			if id := h.waitAttempt(t); id != first {
				t.Fatalf("attempt for %s, want %s", id, first)
			}
			tc.drop(s)
			if sessions, _, _ := s.Stats(); sessions != 1 {
				t.Fatalf("%d sessions before the drop, want 1", sessions)
			}
			second := h.enqueue(t, "alice@local.test", []string{"carol@remote.test"}, testMsg)
			m := s.Wait(t)
			if id := h.waitAttempt(t); id != second {
				t.Fatalf("attempt for %s, want %s", id, second)
			}
			if len(m.To) != 1 || m.To[0] != "carol@remote.test" {
				t.Errorf("second message went to %v", m.To)
			}
			if c := s.Count(); c != 2 {
				t.Errorf("sink holds %d messages, want 2 (no loss, no duplicate)", c)
			}
			if d := h.router.dialed(); len(d) != 2 {
				t.Errorf("dialled %v, want a fresh connection after the drop", d)
			}
			if q := h.queued(t); q != 0 {
				t.Errorf("%d messages still queued", q)
			}
			if strings.Contains(h.logs.String(), "state=pending") {
				t.Errorf("a recipient was deferred although a fresh connection was available:\n%s", h.logs)
			}
		})
	}
}

func TestCachedConnectionIdleLimit(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, nil)
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	s.Wait(t)
	h.waitAttempt(t)
	if o := h.router.open(); o != 1 {
		t.Fatalf("%d connections open after the first message, want the cached one", o)
	}
	// Past the idle limit the cached session is closed, not reused.
	h.clock.Advance(connIdleLimit)
	h.enqueue(t, "alice@local.test", []string{"carol@remote.test"}, testMsg)
	s.Wait(t)
	h.waitAttempt(t)
	if d := h.router.dialed(); len(d) != 2 {
		t.Errorf("dialled %v, want a new connection after the idle limit", d)
	}
	if o := h.router.open(); o != 1 {
		t.Errorf("%d connections open, want only the new one", o)
	}
	if sessions, _, _ := s.Stats(); sessions != 2 {
		t.Errorf("%d sessions, want 2", sessions)
	}
}

func TestRunClosesCachedConnections(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	h := newHarness(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx) }()
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	s.Wait(t)
	h.waitAttempt(t)
	if o := h.router.open(); o != 1 {
		t.Fatalf("%d connections open, want the cached one", o)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if o := h.router.open(); o != 0 {
		t.Errorf("%d connections left open after Run returned", o)
	}
	// The sink saw a QUIT, so its session ended cleanly.
	waitFor(t, "the sink session to end", func() bool {
		return s.Active() == 0
	})
}
