//go:build interop

package queue

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startPostfixSink runs Postfix's smtp-sink on a free loopback port,
// dumping each transaction into its own file under the returned dir.
func startPostfixSink(t *testing.T, extra ...string) (addr, dumpDir string) {
	t.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/smtp-sink"); serr != nil {
			t.Fatal("smtp-sink (postfix) not installed")
		}
		bin = "/usr/sbin/smtp-sink"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	dumpDir = t.TempDir()
	args := append([]string{"-u", "root", "-d", filepath.Join(dumpDir, "msg.")}, extra...)
	args = append(args, addr, "100")
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, dumpDir
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not start on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for a process to bind, not for expiry
	}
}

// dumps returns the transactions smtp-sink wrote; each is complete once
// the 250 after DATA was received.
func dumps(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestInteropRelayToPostfixSmtpSink(t *testing.T) {
	addr, dir := startPostfixSink(t)
	h := newHarness(t, nil, func(c *Config) {
		c.Smarthost = addr
		c.SmarthostTLS = TLSOpportunistic // smtp-sink offers no STARTTLS: exercises the fallback
		c.Now = time.Now
		c.Dial = nil
	})
	h.run(t)
	const n = 25
	for i := range n {
		h.enqueue(t, "alice@local.test", []string{fmt.Sprintf("r%d@remote.test", i), "all@remote.test"},
			fmt.Sprintf("Subject: interop %d\n\n.leading dot\nline\n", i))
	}
	for range n {
		h.waitAttempt(t)
	}
	got := dumps(t, dir)
	if len(got) != n {
		t.Fatalf("smtp-sink received %d transactions, want %d", len(got), n)
	}
	for _, d := range got {
		if !strings.Contains(d, "X-Helo-Args: relay.test") || !strings.Contains(d, "X-Rcpt-Args: <all@remote.test>") || !strings.Contains(d, "\n.leading dot") {
			t.Errorf("transaction lacks a recipient or the unstuffed dot line:\n%s", d)
		}
	}
	if q := h.queued(t); q != 0 {
		t.Errorf("%d still queued", q)
	}
}

func TestInteropPostfixSmtpSinkHardRejectBounces(t *testing.T) {
	addr, _ := startPostfixSink(t, "-f", "RCPT")
	h := newHarness(t, nil, func(c *Config) {
		c.Smarthost = addr
		c.Now = time.Now
		c.Dial = nil
	})
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, testMsg)
	d := parseDSN(t, h.bounces.wait(t).Body)
	r := d.rcpt(t, "bob@remote.test")
	if r.Get("Action") != "failed" || !strings.HasPrefix(r.Get("Status"), "5.") || !strings.HasPrefix(r.Get("Diagnostic-Code"), "smtp; 5") {
		t.Errorf("DSN fields %v", r)
	}
}

// An 8-bit body goes unchanged to a peer without 8BITMIME (documented
// choice: no downgrade), with no BODY= parameter.
func TestInteropEightBitToSevenBitPeer(t *testing.T) {
	addr, dir := startPostfixSink(t, "-8")
	h := newHarness(t, nil, func(c *Config) {
		c.Smarthost = addr
		c.Now = time.Now
		c.Dial = nil
	})
	h.run(t)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, "Subject: caf\xc3\xa9\n\nna\xc3\xafve\n")
	h.waitAttempt(t)
	got := dumps(t, dir)
	if len(got) != 1 {
		t.Fatalf("%d transactions", len(got))
	}
	if !strings.Contains(got[0], "na\xc3\xafve\r\n") && !strings.Contains(got[0], "na\xc3\xafve\n") {
		t.Errorf("8-bit body changed:\n%q", got[0])
	}
	if strings.Contains(got[0], "BODY=8BITMIME") {
		t.Errorf("BODY=8BITMIME sent to a peer that does not offer it:\n%s", got[0])
	}
}

// TestInteropLongLineFoldedToPostfixSmtpSink relays a 3,000-octet line to
// Postfix's smtp-sink: it arrives folded, no line over 998 octets, and
// unfolds to the original.
func TestInteropLongLineFoldedToPostfixSmtpSink(t *testing.T) {
	addr, dir := startPostfixSink(t)
	h := newHarness(t, nil, func(c *Config) {
		c.Smarthost = addr
		c.SmarthostTLS = TLSOpportunistic
		c.Now = time.Now
		c.Dial = nil
	})
	h.run(t)
	line := strings.Repeat("0123456789", 300)
	h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, "Subject: long\r\n\r\n"+line+"\r\nend\r\n")
	h.waitAttempt(t)
	got := dumps(t, dir)
	if len(got) != 1 {
		t.Fatalf("smtp-sink received %d transactions, want 1", len(got))
	}
	for _, l := range strings.Split(got[0], "\n") {
		if len(strings.TrimSuffix(l, "\r")) > 998 {
			t.Fatalf("smtp-sink got a line of %d octets", len(l))
		}
	}
	if !strings.Contains(strings.ReplaceAll(got[0], "\n ", ""), "\n"+line+"\nend\n") {
		t.Fatalf("folded line does not unfold to the original:\n%.400s", got[0])
	}
}
