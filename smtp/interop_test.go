//go:build interop

package smtp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// need fails the test when a third-party program is missing: with the
// interop tag set, absence is a failure, not a skip.
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not installed: %v", prog, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestInteropSwaks(t *testing.T) {
	swaks := need(t, "swaks")
	if out, _ := run(t, swaks, "--support"); !strings.Contains(out, "=== TLS supported") || !strings.Contains(out, "=== Basic AUTH supported") {
		t.Fatalf("swaks lacks TLS or AUTH (Debian: install libnet-ssleay-perl and libio-socket-ssl-perl):\n%s", out)
	}
	e := startServer(t, func(e *env) {
		e.plaintextAuthOK = func(netip.Addr) bool { return false } // loopback counts as remote
	})
	cases := []struct {
		name    string
		args    []string
		wantErr bool
		want    string
	}{
		{"plain", []string{"--server", e.mx, "--to", "alice@example.com"}, false, "250 2.0.0 OK: queued as"},
		{"pipeline", []string{"--server", e.mx, "--to", "bob@example.com", "--pipeline"}, false, "250 2.0.0 OK: queued as"},
		{"starttls", []string{"--server", e.mx, "--to", "alice@example.com", "-tls"}, false, "250 2.0.0 OK: queued as"},
		{"relay denied", []string{"--server", e.mx, "--to", "far@remote.example", "-li", "127.0.0.2"}, true, "554 5.7.1 Relaying denied"},
		{"auth before tls refused", []string{"--server", e.sub, "--to", "far@remote.example", "-a", "PLAIN", "-au", "alice@example.com", "-ap", "secret"}, true, ""},
		{"auth relay", []string{"--server", e.sub, "--to", "far@remote.example", "-tls", "-a", "PLAIN", "-au", "alice@example.com", "-ap", "secret", "--from", "alice@example.com"}, false, "235 2.0.0"},
		{"auth login implicit tls", []string{"--server", e.subs, "--to", "far@remote.example", "--tlsc", "-a", "LOGIN", "-au", "alice@example.com", "-ap", "secret", "--from", "alice@example.com"}, false, "235 2.0.0"},
		{"auth wrong password", []string{"--server", e.sub, "--to", "far@remote.example", "-tls", "-a", "PLAIN", "-au", "alice@example.com", "-ap", "nope"}, true, "535 5.7.8"},
	}
	for _, tc := range cases {
		args := append([]string{"--from", "x@example.org", "--helo", "swaks.example", "--timeout", "20"}, tc.args...)
		out, err := run(t, swaks, dedupeFrom(args)...)
		if (err != nil) != tc.wantErr || !strings.Contains(out, tc.want) {
			t.Errorf("%s: err=%v\n%s", tc.name, err, out)
		}
	}
	if n := len(e.deliverer.messages(t, "alice@example.com")); n != 2 {
		t.Errorf("alice got %d messages, want 2", n)
	}
	if n := len(e.deliverer.messages(t, "bob@example.com")); n != 1 {
		t.Errorf("bob got %d messages, want 1", n)
	}
	if n := len(e.spooler.all()); n != 2 {
		t.Errorf("spooled %d, want 2 (authenticated relays only)", n)
	}
}

// dedupeFrom keeps the last --from, so a case can override the default.
func dedupeFrom(args []string) []string {
	last := -1
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--from" {
			last = i
		}
	}
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--from" && i != last {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func TestInteropPythonSmtplib(t *testing.T) {
	py := need(t, "python3")
	e := startServer(t, nil)
	script := "testdata/interop/smtplib_send.py"
	cases := []struct {
		name string
		args []string
	}{
		{"plain", []string{"plain", "127.0.0.1", port(e.mx), "x@example.org", "alice@example.com"}},
		{"starttls", []string{"starttls", "127.0.0.1", port(e.mx), "x@example.org", "bob@example.com"}},
		{"relay denied", []string{"relay-denied", "127.0.0.1", port(e.mx), "x@example.org", "far@remote.example"}},
		{"starttls auth relay", []string{"starttls", "127.0.0.1", port(e.sub), "alice@example.com", "far@remote.example", "alice@example.com", "secret"}},
		{"ssl auth relay", []string{"ssl", "127.0.0.1", port(e.subs), "alice@example.com", "far@remote.example", "alice@example.com", "secret"}},
	}
	for _, tc := range cases {
		out, err := run(t, py, append([]string{script}, tc.args...)...)
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.name, err, out)
		}
	}
	alice := e.deliverer.messages(t, "alice@example.com")
	if len(alice) != 1 || !strings.Contains(alice[0], "\r\n.leading dot\r\n") {
		t.Errorf("alice: %q", alice)
	}
	if n := len(e.spooler.all()); n != 2 {
		t.Errorf("spooled %d, want 2", n)
	}
}

// TestInteropPostfixSmtpSource loads the server with Postfix's smtp-source:
// 5 parallel sessions, 50 messages of 5 KB, every one must be delivered.
func TestInteropPostfixSmtpSource(t *testing.T) {
	src := need(t, "smtp-source")
	e := startServer(t, nil)
	start := time.Now()
	out, err := run(t, src, "-s", "5", "-m", "50", "-l", "5120", "-c", "-f", "x@example.org", "-t", "alice@example.com", "-M", "smtp-source.example", e.mx)
	if err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	elapsed := time.Since(start)
	msgs := e.deliverer.messages(t, "alice@example.com")
	if len(msgs) != 50 {
		t.Fatalf("delivered %d of 50\n%s", len(msgs), out)
	}
	for _, m := range msgs {
		if len(m) < 5120 || !strings.HasPrefix(m, "Received: from ") {
			t.Fatalf("message of %d octets:\n%.300s", len(m), m)
		}
	}
	t.Logf("smtp-source: 50 messages of 5 KB in %v (%.0f msgs/s)", elapsed, 50/elapsed.Seconds())
}

// TestInteropSwaksLongLines sends, with swaks as the client, messages
// whose body holds one 3,000-octet and one 200,000-octet line: both are
// accepted (Postfix accepts them too) and stored byte for byte.
func TestInteropSwaksLongLines(t *testing.T) {
	swaks := need(t, "swaks")
	e := startServer(t, nil)
	for i, n := range []int{3000, 200000} {
		line := strings.Repeat("0123456789", n/10)
		path := filepath.Join(t.TempDir(), "msg")
		data := "Subject: long " + strconv.Itoa(n) + "\r\n\r\n" + line + "\r\nend\r\n.\r\n"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, swaks, "--server", e.mx, "--from", "x@example.org", "--to", "alice@example.com",
			"--helo", "swaks.example", "--timeout", "20", "--data", "@"+path)
		if err != nil || !strings.Contains(out, "250 2.0.0 OK: queued as") {
			t.Fatalf("%d-octet line: err=%v\n%.2000s", n, err, out)
		}
		msgs := e.deliverer.messages(t, "alice@example.com")
		if len(msgs) != i+1 || !strings.HasSuffix(msgs[i], "\r\n\r\n"+line+"\r\nend\r\n") {
			t.Fatalf("%d-octet line not stored whole", n)
		}
	}
}
