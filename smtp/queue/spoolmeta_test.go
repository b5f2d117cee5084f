package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/smtp/smtptest"
)

// Every prefix of a spooled .msg (a write torn anywhere: in the body, the
// envelope or the trailer) and every recycled file holding another
// message's content is an unacknowledged orphan at start: removed, never
// scheduled, never quarantined. The whole file is scheduled.
func TestStartupRemovesTornSpoolFiles(t *testing.T) {
	t.Parallel()
	src := newHarness(t, nil, nil)
	id := src.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	whole, err := os.ReadFile(src.q.msgPath(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) <= len(testMsg)+spoolTrailerLen {
		t.Fatalf("spool file of %d bytes holds no envelope", len(whole))
	}
	other := "00000000000000000000abcd"
	bodyFlip := []byte(string(whole))
	bodyFlip[3] ^= 0x20 // a body block not written: the checksum fails
	cases := map[string][]byte{
		"other id":     whole, // a recycled file's stale content
		"body changed": bodyFlip,
		"longer body":  append([]byte("X"), whole...),
		"body only":    []byte(testMsg),
		"empty":        nil,
	}
	for _, n := range []int{1, len(testMsg) / 2, len(testMsg), len(testMsg) + 10, len(whole) - spoolTrailerLen, len(whole) - 5, len(whole) - 1} {
		cases["cut at "+strconv.Itoa(n)] = whole[:n]
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			fid := id
			if name == "other id" {
				fid = other
			}
			if err := os.WriteFile(filepath.Join(dir, fid+msgSuffix), content, 0o600); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
			if n := h.queued(t); n != 0 {
				t.Errorf("%d messages scheduled from a torn spool file", n)
			}
			if f := spoolFiles(t, dir); len(f) != 0 {
				t.Errorf("left: %v", f)
			}
			if !strings.Contains(h.logs.String(), "queue orphan removed") {
				t.Error("orphan removal not logged")
			}
			if _, err := os.Stat(filepath.Join(dir, quarantineDir)); err == nil {
				t.Error("an unacknowledged file was quarantined")
			}
		})
	}

	t.Run("whole", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, id+msgSuffix), whole, 0o600); err != nil {
			t.Fatal(err)
		}
		s := smtptest.NewSink(t)
		h := newHarness(t, s, func(c *Config) { c.Dir = dir })
		it := h.item(t, id)
		if it.From != "alice@local.test" || len(it.Recipients) != 1 || it.Recipients[0].Addr != "bob@remote.test" {
			t.Fatalf("restored %+v", it)
		}
		h.run(t)
		if m := s.Wait(t); string(m.Body) != testMsg {
			t.Errorf("delivered %q, want %q (the envelope is not part of the body)", m.Body, testMsg)
		}
	})
}

// A .env written after an attempt overrides the envelope in the .msg, and
// survives a restart.
func TestEnvelopeFileOverridesSpoolEnvelope(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test", "carol@remote.test"}, testMsg)
	e, err := h.q.readEnv(id)
	if err != nil {
		t.Fatal(err)
	}
	e.Attempts = 3
	e.Rcpts[0].State = StateSent
	if err := h.q.writeEnv(e); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	it := h2.item(t, id)
	if it.Attempts != 3 || it.Recipients[0].State != StateSent || it.Recipients[1].State != StatePending {
		t.Errorf("after restart %+v, want the .env's states", it)
	}
}

// A .msg that does not check out next to a .env was acknowledged (the
// .env is written only after an attempt): both are quarantined.
func TestStartupQuarantinesDamagedBodyWithEnvelope(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	e, err := h.q.readEnv(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.q.writeEnv(e); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, id+msgSuffix), 10); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, nil, func(c *Config) { c.Dir = dir })
	if n := h2.queued(t); n != 0 {
		t.Errorf("%d queued", n)
	}
	q := spoolFiles(t, filepath.Join(dir, quarantineDir))
	if len(q) != 2 {
		t.Errorf("quarantine holds %v, want the .env and the .msg", q)
	}
}

// FuzzReadSpoolMeta: any .msg content gives an envelope that matches the
// file (id, body length) or an error, never a panic.
func FuzzReadSpoolMeta(f *testing.F) {
	const id = "00000000000000000000abcd"
	e := &envelope{Version: envelopeVersion, ID: id, From: "a@b.test",
		Rcpts:   []RecipientStatus{{Addr: "c@d.test", State: StatePending}},
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Size: int64(len(testMsg))}
	valid, err := appendSpoolMeta([]byte(testMsg), e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte(testMsg))
	f.Add([]byte("\x00\x00\x00\x02\x00\x00\x00\x00" + spoolMagic))
	f.Add([]byte("\xff\xff\xff\xff\x00\x00\x00\x00" + spoolMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readSpoolMeta(bytes.NewReader(b), int64(len(b)), id)
		if err != nil {
			return
		}
		if got.ID != id {
			t.Fatalf("accepted an envelope naming %q", got.ID)
		}
		if got.Size < 0 || got.Size > int64(len(b)-spoolTrailerLen) {
			t.Fatalf("accepted size %d for a file of %d bytes", got.Size, len(b))
		}
	})
}

// A queue spooled before .msg files held an envelope (bare body, .env
// from Enqueue) is delivered after an upgrade; a bare body whose length
// is not the .env's size is quarantined.
func TestStartupDeliversLegacyLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const id, short = "00000000000000000000cafe", "00000000000000000000caff"
	envJSON := func(id string) string {
		return `{"version":1,"id":"` + id + `","from":"alice@local.test","rcpts":[{"addr":"bob@remote.test","state":"pending"}],"created":"2026-11-25T12:00:00Z","size":` + strconv.Itoa(len(testMsg)) + `,"attempts":0,"next_try":"2026-11-25T12:00:00Z"}`
	}
	for name, content := range map[string]string{
		id + msgSuffix:    testMsg,
		id + envSuffix:    envJSON(id),
		short + msgSuffix: testMsg[:20],
		short + envSuffix: envJSON(short),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := smtptest.NewSink(t)
	h := newHarness(t, s, func(c *Config) { c.Dir = dir })
	if n := h.queued(t); n != 1 {
		t.Fatalf("%d queued, want the legacy message", n)
	}
	h.run(t)
	if m := s.Wait(t); string(m.Body) != testMsg {
		t.Errorf("delivered %q, want %q", m.Body, testMsg)
	}
	h.waitAttempt(t)
	q := spoolFiles(t, filepath.Join(dir, quarantineDir))
	if len(q) != 2 {
		t.Errorf("quarantine holds %v, want the short body and its .env", q)
	}
}
