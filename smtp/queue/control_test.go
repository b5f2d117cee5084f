package queue

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/popgate/popgate/smtp/smtptest"
)

func TestControlWhileRunning(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	s.SetRcpt(func(string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	})
	h := newHarness(t, s, nil)
	h.run(t)
	t0 := h.clock.Now()
	id1 := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	h.waitAttempt(t)
	h.clock.Advance(time.Millisecond) // distinct ids and ages
	id2 := h.enqueue(t, "carol@local.test", []string{"dan@remote.test", "erin@remote.test"}, "Subject: x\n\nbody\n")
	h.waitAttempt(t)

	items, err := h.q.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].ID != id1 || items[1].ID != id2 {
		t.Fatalf("List = %+v, want %s then %s", items, id1, id2)
	}
	a := items[0]
	if a.From != "alice@local.test" || a.Size != int64(len(testMsg)) || a.Attempts != 1 ||
		a.Age != time.Millisecond || !a.Created.Equal(t0) || !a.NextTry.Equal(t0.Add(time.Second)) {
		t.Errorf("item %+v", a)
	}
	if r := a.Recipients[0]; r.State != StatePending || !strings.Contains(r.LastError, "451 4.7.1 greylisted") || r.RemoteMTA != "127.0.0.1" {
		t.Errorf("recipient %+v", r)
	}
	if n := len(items[1].Recipients); n != 2 {
		t.Errorf("second item has %d recipients", n)
	}

	// Flush one: it is tried now although its time has not come.
	if err := h.q.Flush(id1); err != nil {
		t.Fatal(err)
	}
	if got := h.waitAttempt(t); got != id1 {
		t.Errorf("flush %s attempted %s", id1, got)
	}
	if it := h.item(t, id1); it.Attempts != 2 {
		t.Errorf("attempts after flush = %d", it.Attempts)
	}
	// Flush all.
	if err := h.q.Flush(""); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{h.waitAttempt(t): true, h.waitAttempt(t): true}
	if !got[id1] || !got[id2] {
		t.Errorf("flush all attempted %v", got)
	}

	if err := h.q.Delete(id2); err != nil {
		t.Fatal(err)
	}
	if items, _ := h.q.List(); len(items) != 1 || items[0].ID != id1 {
		t.Errorf("after delete List = %+v", items)
	}
	for _, suffix := range []string{envSuffix, msgSuffix} {
		if _, err := os.Stat(h.q.envPath(id2)[:len(h.q.envPath(id2))-4] + suffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s%s still on disk", id2, suffix)
		}
	}
	for _, bad := range []string{id2, "nosuch", "../../etc/passwd"} {
		if err := h.q.Delete(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", bad, err)
		}
		if err := h.q.Flush(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Flush(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	if h.bounces.count() != 0 {
		t.Error("Delete sent a bounce")
	}
}

func TestDeleteDuringDelivery(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	gate := make(chan struct{})
	s.SetGate(gate)
	s.SetRcpt(func(to string) error {
		if to == "later@remote.test" {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 0, 0}, Message: "later"}
		}
		return nil
	})
	h := newHarness(t, s, nil)
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"now@remote.test", "later@remote.test"}, testMsg)
	s.WaitData(t)
	if err := h.q.Delete(id); err != nil {
		t.Fatal(err)
	}
	close(gate)
	s.Wait(t)
	h.waitAttempt(t)
	if _, err := os.Stat(h.q.envPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the finished delivery wrote the deleted envelope back")
	}
	if n := h.queued(t); n != 0 {
		t.Errorf("%d queued after delete", n)
	}
}

func TestEnqueueRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	for _, tc := range []struct {
		name string
		from string
		to   []string
		want string
	}{
		{"no recipients", "a@b.test", nil, "no recipients"},
		{"CRLF in sender", "a@b.test\r\nRCPT TO:<x@y>", []string{"c@d.test"}, "sender"},
		{"empty recipient", "a@b.test", []string{""}, "recipient"},
		{"recipient without domain", "a@b.test", []string{"user"}, "recipient"},
		{"angle brackets", "a@b.test", []string{"<c@d.test>"}, "recipient"},
		{"NUL", "a@b.test", []string{"c\x00@d.test"}, "recipient"},
		{"too long", "a@b.test", []string{strings.Repeat("x", 300) + "@d.test"}, "recipient"},
	} {
		_, err := h.q.Enqueue(context.Background(), tc.from, tc.to, strings.NewReader(testMsg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	if ents := spoolFiles(t, h.cfg.Dir); len(ents) != 0 {
		t.Errorf("rejected messages left files: %v", ents)
	}
	// A failing body reader leaves nothing behind either.
	_, err := h.q.Enqueue(context.Background(), "a@b.test", []string{"c@d.test"}, errReader{})
	if err == nil {
		t.Fatal("Enqueue with a failing reader succeeded")
	}
	if ents := spoolFiles(t, h.cfg.Dir); len(ents) != 0 {
		t.Errorf("failed enqueue left files: %v", ents)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

func TestRunReturnsOnCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestFlushDuringDeliveryRetriesRightAfter(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	gate := make(chan struct{}, 2)
	s.SetGate(gate)
	s.DropData.Store(1) // the first try fails after DATA starts
	h := newHarness(t, s, nil)
	h.run(t)
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	s.WaitData(t)
	if err := h.q.Flush(id); err != nil { // while the attempt is held in DATA
		t.Fatal(err)
	}
	gate <- struct{}{} // now the sink drops the connection
	h.waitAttempt(t)
	// No clock change: only the flush can make it due again.
	s.WaitData(t)
	gate <- struct{}{}
	s.Wait(t)
	h.waitAttempt(t)
	if h.queued(t) != 0 {
		t.Error("still queued")
	}
}

func TestShutdownCutsStuckDeliveryAndKeepsMessage(t *testing.T) {
	t.Parallel()
	s := smtptest.NewSink(t)
	gate := make(chan struct{}) // DATA never completes
	s.SetGate(gate)
	h := newHarness(t, s, nil)
	h.q.grace = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx) }()
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	s.WaitData(t)
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	if got := h.waitAttempt(t); got != id {
		t.Fatalf("attempt %s", got)
	}
	if r := h.item(t, id).Recipients[0]; r.State != StatePending {
		t.Errorf("after shutdown %+v, want pending", r)
	}
	close(gate)
}
