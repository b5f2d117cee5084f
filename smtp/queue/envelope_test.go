package queue

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

const validEnv = `{"version":1,"id":"18eb47f663d98000026646bb","from":"alice@local.test",
"rcpts":[{"addr":"bob@remote.test","state":"pending","status":"4.4.1","last_error":"connect: refused"},
{"addr":"carol@remote.test","state":"sent"}],
"created":"2026-11-25T12:00:00Z","size":107,"attempts":1,"next_try":"2026-11-25T12:00:01Z"}`

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	ok := []struct{ name, in string }{
		{"valid", validEnv},
		{"null sender", strings.Replace(validEnv, `"alice@local.test"`, `""`, 1)},
		{"utf-8 address", strings.Replace(validEnv, "bob@remote.test", "jürgen@remote.test", 1)},
	}
	for _, tc := range ok {
		if _, err := decodeEnvelope([]byte(tc.in)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	bad := []struct{ name, in, want string }{
		{"empty", "", "EOF"},
		{"not JSON", "garbage", "invalid character"},
		{"truncated", validEnv[:50], "unexpected EOF"},
		{"trailing data", validEnv + "{}", "trailing"},
		{"unknown field", strings.Replace(validEnv, `"size"`, `"sise"`, 1), "unknown field"},
		{"wrong version", strings.Replace(validEnv, `"version":1`, `"version":2`, 1), "version"},
		{"path in id", strings.Replace(validEnv, `"18eb47f663d98000026646bb"`, `"../../etc/passwd"`, 1), "bad id"},
		{"upper-case id", strings.Replace(validEnv, `"18eb47f663d98000026646bb"`, `"18EB"`, 1), "bad id"},
		{"CRLF in sender", strings.Replace(validEnv, `"alice@local.test"`, `"a@b\r\nRCPT TO:<x@y>"`, 1), "sender"},
		{"no recipients", `{"version":1,"id":"ab","from":"","rcpts":[],"created":"2026-11-25T12:00:00Z","size":1,"attempts":0,"next_try":"2026-11-25T12:00:00Z"}`, "no recipients"},
		{"empty recipient", strings.Replace(validEnv, `"bob@remote.test"`, `""`, 1), "recipient 0"},
		{"unknown state", strings.Replace(validEnv, `"state":"sent"`, `"state":"lost"`, 1), "unknown state"},
		{"negative size", strings.Replace(validEnv, `"size":107`, `"size":-1`, 1), "negative"},
		{"no creation time", strings.Replace(validEnv, `"created":"2026-11-25T12:00:00Z",`, ``, 1), "creation"},
		{"huge", strings.Repeat(" ", maxEnvelopeBytes+1), "limit"},
	}
	for _, tc := range bad {
		_, err := decodeEnvelope([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	e := &envelope{Version: envelopeVersion, ID: "abc123", From: "a@b.test",
		Rcpts:   []RecipientStatus{{Addr: "c@d.test", State: StateFailed, Status: "5.1.1", LastError: "550 5.1.1 no", RemoteMTA: "mx.d.test", LastAttempt: time.Unix(100, 0).UTC()}},
		Created: time.Unix(50, 0).UTC(), Size: 9, EightBit: true, Attempts: 3, NextTry: time.Unix(200, 0).UTC(), Warned: true}
	b, err := encodeEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := encodeEnvelope(got)
	if !bytes.Equal(b, b2) {
		t.Errorf("round trip changed the envelope:\n%s\n%s", b, b2)
	}
}

// FuzzDecodeEnvelope: a corrupt .env must give an error, never a panic,
// and whatever is accepted must survive a round trip unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(validEnv))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"id":"ab","from":"","rcpts":[{"addr":"x@y","state":"bounced"}],"created":"2026-11-25T12:00:00+01:00","size":0,"attempts":0,"next_try":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEnvelope(data)
		if err != nil {
			return
		}
		b, err := encodeEnvelope(e)
		if err != nil {
			t.Fatalf("accepted envelope does not encode: %v", err)
		}
		e2, err := decodeEnvelope(b)
		if err != nil {
			t.Fatalf("re-encoded envelope rejected: %v\n%s", err, b)
		}
		b2, _ := encodeEnvelope(e2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip differs:\n%s\n%s", b, b2)
		}
	})
}

func TestNormReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		eightBit       bool
	}{
		{"empty", "", "", false},
		{"CRLF kept", "a\r\nb\r\n", "a\r\nb\r\n", false},
		{"bare LF", "a\nb\n", "a\r\nb\r\n", false},
		{"bare CR", "a\rb", "a\r\nb\r\n", false},
		{"CR at end", "a\r", "a\r\n", false},
		{"no final newline", "a", "a\r\n", false},
		{"blank lines", "\n\n", "\r\n\r\n", false},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n", false},
		{"8-bit", "caf\xc3\xa9\n", "caf\xc3\xa9\r\n", true},
	} {
		// One byte at a time too, so state across reads is exercised.
		for _, r := range []io.Reader{strings.NewReader(tc.in), &oneByteReader{s: tc.in}} {
			n := newNormReader(r)
			got, err := io.ReadAll(n)
			if err != nil || string(got) != tc.want || n.eightBit != tc.eightBit || n.size != int64(len(tc.want)) {
				t.Errorf("%s: got %q (8bit %v, size %d, %v), want %q (8bit %v)", tc.name, got, n.eightBit, n.size, err, tc.want, tc.eightBit)
			}
		}
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func FuzzNormReader(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\rd"))
	f.Add([]byte("\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := io.ReadAll(newNormReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		// Every CR is followed by LF, every LF preceded by CR.
		for i, c := range got {
			if c == '\r' && (i+1 >= len(got) || got[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, got)
			}
			if c == '\n' && (i == 0 || got[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, got)
			}
		}
		if len(got) > 0 && !bytes.HasSuffix(got, []byte("\r\n")) {
			t.Fatalf("no final CRLF: %q", got)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	base := func() Config { return Config{Dir: t.TempDir(), Bouncer: &bouncer{}} }
	bad := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no dir", func(c *Config) { c.Dir = "" }, "Dir"},
		{"no bouncer", func(c *Config) { c.Bouncer = nil }, "Bouncer"},
		{"bad TLS mode", func(c *Config) { c.SmarthostTLS = "sometimes" }, "TLS mode"},
		{"smarthost without port", func(c *Config) { c.Smarthost = "relay.example" }, "smarthost"},
		{"auth without smarthost", func(c *Config) { c.SmarthostAuth = &Auth{} }, "without a smarthost"},
		{"auth in clear", func(c *Config) {
			c.Smarthost, c.SmarthostTLS, c.SmarthostAuth = "relay.example:587", TLSNone, &Auth{}
		}, "needs TLS"},
		{"negative retry", func(c *Config) { c.MinRetry = -time.Second }, "negative"},
		{"negative limit", func(c *Config) { c.MaxConcurrent = -1 }, "negative"},
		{"hostname with CRLF", func(c *Config) { c.Hostname = "a\r\nb" }, "hostname"},
	}
	for _, tc := range bad {
		c := base()
		tc.mod(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	q, err := New(base())
	if err != nil {
		t.Fatal(err)
	}
	c := q.cfg
	if c.MinRetry != DefaultMinRetry || c.MaxAge != DefaultMaxAge || c.Port != "25" ||
		c.SmarthostTLS != TLSOpportunistic || c.MaxConcurrent != DefaultMaxConcurrent || c.MaxPerDestination != DefaultMaxPerDestination {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestBackoffDoublesUpToMaxAge(t *testing.T) {
	t.Parallel()
	q := &Queue{cfg: Config{MinRetry: 5 * time.Minute, MaxAge: 120 * time.Hour}}
	for n, want := range map[int]time.Duration{1: 5 * time.Minute, 2: 10 * time.Minute, 4: 40 * time.Minute, 40: 120 * time.Hour} {
		if got := q.backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}
