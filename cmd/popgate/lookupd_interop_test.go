//go:build interop

package main

// The live lookup servers against their real clients: a private Postfix
// smtpd that asks popgate's policy server at every RCPT (and has no map
// file at all), and postmap reading popgate's socket map.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popgate/popgate/acl/postmaptest"
)

// lookupPopgate starts the popgate binary with the policy server and the
// socket map on loopback (TCP and a unix socket), loopback untrusted, a
// short pop_ttl and one user; it returns the server and the addresses.
func lookupPopgate(t *testing.T, ttl time.Duration) (s *binServer, policy, sockmap, unixSock string) {
	t.Helper()
	dir := t.TempDir()
	policy, sockmap = freeAddr(t), freeAddr(t)
	unixSock = filepath.Join(dir, "socketmap.sock")
	access := filepath.Join(dir, "access")
	if err := os.WriteFile(access, []byte("Connect:192.168.0 RELAY\nConnect:127.0.0.9 REJECT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`hostname = "mx.example.com"
domains = ["example.com"]
data_dir = %q
[pop3]
listen = ["127.0.0.1:0"]
[smtp]
listen = ["127.0.0.1:0"]
submission = []
[relay]
pop_ttl = "%s"
trusted_networks = []
access_file = %q
[policy]
listen = [%q]
[socketmap]
listen = [%q, "unix:%s"]
[log]
level = "debug"
`, dir, ttl, access, policy, sockmap, unixSock)
	cfg := setupBinary(t, dir, conf)
	s = startBinary(t, cfg)
	waitListening(t, policy)
	waitListening(t, sockmap)
	return s, policy, sockmap, unixSock
}

// mpopLogin logs in over POP3 with mpop from the local address from.
func mpopLogin(t *testing.T, pop, from string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(pop)
	args := []string{"--host=" + host, "--port=" + port, "--auth=user", "--user=alice@example.com",
		"--passwordeval=echo correct horse battery", "--delivery=maildir," + maildirFor(t), "--tls=off",
		"--uidls-file=" + filepath.Join(t.TempDir(), "uidls"), "--keep=on", "--timeout=20", "--source-ip=" + from}
	if out, err := runCmd(t, "", need(t, "mpop"), args...); err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
}

// privatePostfix runs a Postfix instance of the test's own: configuration
// and queue in a temporary directory, smtpd on a free loopback port,
// everything relayed to relayhost, and smtpd_relay_restrictions asking
// popgate's policy server and nothing else. It returns smtpd's address.
func privatePostfix(t *testing.T, policy, relayhost string) string {
	t.Helper()
	need(t, "postfix")
	w, err := os.MkdirTemp("", "popgate-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons drop to the postfix user and must reach these.
	if err := os.Chmod(w, 0o755); err != nil {
		t.Fatal(err)
	}
	etc, spool, lib := filepath.Join(w, "etc"), filepath.Join(w, "spool"), filepath.Join(w, "lib")
	for _, d := range []string{etc, spool, lib} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runCmd(t, "", "chown", "postfix", lib); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	smtpd := freeAddr(t)
	mainCf := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s
myhostname = pf.example.net
mydomain = example.net
myorigin = $mydomain
mydestination =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# The test clients (127.0.0.2, 127.0.0.3) are outside mynetworks, and
# mynetworks is not used by the restrictions anyway.
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions = check_policy_service inet:%s, reject
smtpd_recipient_restrictions =
relayhost = [%s]:%s
biff = no
alias_maps =
alias_database =
maillog_file = %s
maillog_file_prefixes = %s
smtpd_banner = $myhostname ESMTP
`, spool, lib, policy, strings.Split(relayhost, ":")[0], strings.Split(relayhost, ":")[1], filepath.Join(w, "postfix.log"), w)
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(mainCf), 0o644); err != nil {
		t.Fatal(err)
	}
	dist, err := os.ReadFile("/usr/share/postfix/master.cf.dist")
	if err != nil {
		t.Fatal(err)
	}
	var master strings.Builder
	for _, line := range strings.Split(string(dist), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 8 && f[0] == "smtp" && f[1] == "inet":
			fmt.Fprintf(&master, "%s inet n - n - - smtpd\n", smtpd)
		case len(f) >= 8 && line[0] != '#' && line[0] != ' ':
			f[4] = "n" // no chroot: the queue is a temporary directory
			master.WriteString(strings.Join(f, " ") + "\n")
		default:
			master.WriteString(line + "\n")
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(master.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "", need(t, "postfix"), "-c", etc, "check"); err != nil {
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "", need(t, "postfix"), "-c", etc, "start"); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	pidBytes, _ := os.ReadFile(filepath.Join(spool, "pid", "master.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidBytes)))
	t.Cleanup(func() {
		if out, err := runCmd(t, "", need(t, "postfix"), "-c", etc, "stop"); err != nil {
			t.Errorf("postfix stop: %v\n%s", err, out)
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(w, "postfix.log"))
			t.Logf("postfix log:\n%s", log)
		}
		// master exits asynchronously after stop.
		waitUntil(t, "postfix master gone", 20*time.Second, func() bool {
			return pid <= 0 || syscall.Kill(pid, 0) != nil
		})
		os.RemoveAll(w)
	})
	waitListening(t, smtpd)
	return smtpd
}

// TestInteropPostfixPolicyService: a real Postfix smtpd with
// check_policy_service and no map file relays for a client right after
// its POP3 login on popgate, refuses another client, and refuses the
// first again after pop_ttl.
func TestInteropPostfixPolicyService(t *testing.T) {
	for _, p := range []string{"swaks", "mpop", "smtp-sink", "postfix"} {
		need(t, p)
	}
	sinkAddr, sinkDir := postfixSink(t)

	// Long enough for the steps after the login on a loaded machine.
	const ttl = 15 * time.Second
	pg, policy, _, _ := lookupPopgate(t, ttl)
	pf := privatePostfix(t, policy, sinkAddr)

	if out := swaksSend(t, pf, "127.0.0.2", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "<** 554 5.7.1") {
		t.Fatalf("postfix relayed before the POP3 login:\n%s", out)
	}
	mpopLogin(t, pg.pop, "127.0.0.2")
	if out := swaksSend(t, pf, "127.0.0.2", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "queued as") {
		t.Fatalf("postfix refused to relay after the POP3 login:\n%s\npopgate:\n%s", out, pg.stderr)
	}
	if out := swaksSend(t, pf, "127.0.0.3", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "<** 554 5.7.1") {
		t.Fatalf("postfix relayed for a client that never logged in:\n%s", out)
	}
	// A static REJECT rule reaches the client with popgate's reply.
	if out := swaksSend(t, pf, "127.0.0.9", "alice@example.com", "friend@remote.example"); !strings.Contains(out, "554 5.7.1") || !strings.Contains(out, "Access denied") {
		t.Fatalf("REJECT rule not applied by postfix:\n%s", out)
	}
	waitUntil(t, "relayed message at smtp-sink", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(sinkDir, "msg.*"))
		return len(files) == 1
	})
	// After pop_ttl the same client is refused again. A new SMTP session
	// each time: smtpd asks the policy server afresh.
	waitUntil(t, "postfix refusing after pop_ttl", ttl+15*time.Second, func() bool {
		out := swaksSend(t, pf, "127.0.0.2", "alice@example.com", "friend@remote.example")
		return strings.Contains(out, "<** 554 5.7.1")
	})
	if !strings.Contains(pg.stderr.String(), "relay expire") {
		t.Errorf("popgate did not log the expiry:\n%s", pg.stderr)
	}
}

// TestInteropPostmapSocketmap: postmap reads popgate's socket map over
// TCP and a unix socket: the sendmail mirror's keys and values, a grant
// from the POP3 login on, and gone after pop_ttl.
func TestInteropPostmapSocketmap(t *testing.T) {
	for _, p := range []string{"postmap", "mpop"} {
		need(t, p)
	}
	// Long enough for the queries after the login on a loaded machine.
	const ttl = 10 * time.Second
	pg, _, sockmap, unixSock := lookupPopgate(t, ttl)
	_, pfconf := postmaptest.New(t)
	host, port, _ := net.SplitHostPort(sockmap)
	tables := []string{"socketmap:inet:" + host + ":" + port + ":access", "socketmap:unix:" + unixSock + ":access"}
	query := func(table, key string) (string, error) {
		out, err := runCmd(t, "", need(t, "postmap"), "-c", pfconf, "-q", key, table)
		return strings.TrimSpace(out), err
	}
	for _, table := range tables {
		if out, err := query(table, "connect:127.0.0.2"); err == nil || out != "" {
			t.Fatalf("%s before login: %q %v, want not found", table, out, err)
		}
		if out, err := query(table, "connect:192.168.0"); err != nil || out != "RELAY" {
			t.Fatalf("%s static rule: %q %v", table, out, err)
		}
		if out, err := query(table, "Connect:127.0.0.9"); err != nil || out != "REJECT" {
			t.Fatalf("%s static rule (case folded): %q %v", table, out, err)
		}
	}
	mpopLogin(t, pg.pop, "127.0.0.2")
	for _, table := range tables {
		if out, err := query(table, "connect:127.0.0.2"); err != nil || out != "RELAY" {
			t.Fatalf("%s after login: %q %v\npopgate:\n%s", table, out, err, pg.stderr)
		}
	}
	// A client that breaks the protocol gets an answer; postmap still works.
	c, err := net.Dial("tcp", sockmap)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	c.Close()
	if !strings.Contains(string(buf[:n]), "PERM ") {
		t.Errorf("malformed request answered %q, want a PERM netstring", buf[:n])
	}
	waitUntil(t, "grant gone from the socket map after pop_ttl", ttl+10*time.Second, func() bool {
		out, err := query(tables[0], "connect:127.0.0.2")
		return err != nil && out == ""
	})
	if out, err := query(tables[1], "connect:127.0.0.2"); err == nil || out != "" {
		t.Fatalf("unix socket after expiry: %q %v", out, err)
	}
}
