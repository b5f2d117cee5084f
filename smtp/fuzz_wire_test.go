package smtp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bareNewline is the test oracle: does p hold a CR not followed by LF, or
// an LF not preceded by CR?
func bareNewline(p []byte) bool {
	for i, c := range p {
		if c == '\n' && (i == 0 || p[i-1] != '\r') {
			return true
		}
		if c == '\r' && (i == len(p)-1 || p[i+1] != '\n') {
			return true
		}
	}
	return false
}

// FuzzNormalizer checks the message line-ending rules on arbitrary input
// split at an arbitrary point: strict, a message passes unchanged exactly
// when it has no bare CR or LF; relaxed, the output has none, one CRLF per
// input LF, and never a CR of its own.
func FuzzNormalizer(f *testing.F) {
	for _, s := range []string{
		"a\r\nb\r\n", "a\nb", "X-Test: a\rX-Injected: yes\r\n", "\r", "\n", "\r\r\n\n",
		"\r\n.\n.\r\n", "line\r", strings.Repeat("x", 3000) + "\r\n",
	} {
		f.Add([]byte(s), uint16(1), false)
		f.Add([]byte(s), uint16(2), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16, relax bool) {
		if bytes.IndexByte(in, 0) >= 0 {
			return // NUL is refused before line endings are looked at
		}
		k := int(split) % (len(in) + 1)
		var out bytes.Buffer
		n := &normalizer{w: &out, max: 1 << 30, relax: relax}
		_, err := n.Write(in[:k])
		if err == nil {
			_, err = n.Write(in[k:])
		}
		if err == nil {
			err = n.Close()
		}
		if !relax {
			if bare := bareNewline(in); bare != (err != nil) {
				t.Fatalf("strict %q: bare=%v err=%v", in, bare, err)
			}
			if err != nil && !errors.Is(err, errBareCR) && !errors.Is(err, errBareLF) {
				t.Fatalf("strict %q: err %v", in, err)
			}
			if err == nil && !bytes.Equal(out.Bytes(), in) {
				t.Fatalf("strict %q changed to %q", in, out.Bytes())
			}
			return
		}
		if err != nil {
			t.Fatalf("relaxed %q: %v", in, err)
		}
		got := out.Bytes()
		if bareNewline(got) {
			t.Fatalf("relaxed %q left a bare CR or LF: %q", in, got)
		}
		if c, w := bytes.Count(got, []byte("\r\n")), bytes.Count(in, []byte("\n")); c != w {
			t.Fatalf("relaxed %q: %d CRLF, want %d", in, c, w)
		}
		if n.out != int64(len(got)) {
			t.Fatalf("counted %d octets, wrote %d", n.out, len(got))
		}
	})
}

// FuzzDataLineEndings sends message text dense in CR, LF and dots through a
// real listener by DATA (dot-stuffed as a client would) and by BDAT: it is
// accepted exactly when it has no bare CR or LF, then stored byte for byte,
// and the session stays in step.
func FuzzDataLineEndings(f *testing.F) {
	for _, s := range []string{
		"ab\r\ncd", "a\nb", "a\rb", "\r\n.\r\n", ".\n.\r\n", "a\r\r\n.\n", "..\r\n.", "\n\n\n",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	e := startServer(f, func(e *env) {
		e.cfg.ReadTimeout = 5 * time.Second
		e.cfg.MaxConnsPerIP = 1000
	})
	alphabet := []byte("a\r\n. ")
	f.Fuzz(func(t *testing.T, raw []byte, bdat bool) {
		if len(raw) > 4000 {
			return
		}
		body := make([]byte, len(raw))
		for i, c := range raw {
			body[i] = alphabet[int(c)%len(alphabet)]
		}
		// What the server must store: the text, ended by CRLF for DATA.
		msg := append(body, "\r\n"...)
		if bdat {
			msg = body
		}
		rc, _ := e.raw(t, "127.0.0.2", e.mx)
		rc.Run([]step{{Send: "EHLO c", Want: "250 "}})
		toAlice(rc)
		before := e.deliverer.count()
		if bdat {
			rc.Send("BDAT " + strconv.Itoa(len(body)) + " LAST\r\n" + string(body))
		} else {
			if bytes.HasSuffix(body, []byte("\r")) {
				return // go-smtp does not see CR CRLF.CRLF as the end; nor does the wire
			}
			rc.Run([]step{{Send: "DATA", Want: "354"}})
			stuffed := bytes.ReplaceAll(msg, []byte("\r\n."), []byte("\r\n.."))
			if bytes.HasPrefix(stuffed, []byte(".")) {
				stuffed = append([]byte("."), stuffed...)
			}
			rc.Send(string(stuffed) + ".\r\n")
		}
		got := rc.Reply()
		bare := bareNewline(msg)
		switch {
		case len(body) == 0 && bdat:
			if !strings.HasPrefix(got, "250") {
				t.Fatalf("empty BDAT: %q", got)
			}
			return
		case bare && !strings.HasPrefix(got, "550 5.5.2"):
			t.Fatalf("%q with a bare CR/LF: %q", body, got)
		case !bare && !strings.HasPrefix(got, "250 2.0.0"):
			t.Fatalf("%q: %q", body, got)
		}
		after := e.deliverer.count()
		if bare {
			if after != before {
				t.Fatalf("%q stored although refused", body)
			}
			return
		}
		stored, err := os.ReadFile(filepath.Join(e.deliverer.dir, "alice@example.com", strconv.Itoa(after)+".eml"))
		if after != before+1 || err != nil || !bytes.HasSuffix(stored, append([]byte("\r\n"), msg...)) {
			t.Fatalf("%q not stored byte for byte (%v)", body, err)
		}
		rc.Run([]step{{Send: "NOOP", Want: "250"}})
	})
}

// count is how many messages were delivered so far.
func (d *fileDeliverer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}
