//go:build interop

package pop3

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Interop tests drive this package's Server, running in-process on real
// listeners over an in-memory maildrop, with real POP3 clients: Python's
// poplib, mpop, fetchmail and getmail6. A missing program fails the test.

// interopEnv is a server with a plain listener (STLS offered) and an
// implicit-TLS listener.
type interopEnv struct {
	*env
	tlsAddr string
}

// Except in "plain" mode, every client counts as remote, so a login
// before TLS is refused and the clients must use STLS or implicit TLS.
func newInteropEnv(t *testing.T, mode string) *interopEnv {
	t.Helper()
	cert := selfSigned(t)
	e := newEnv(t, func(c *Config) {
		c.TLS = cert
		if mode != "plain" {
			remoteOnly(c)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.ServeTLS(l)
	return &interopEnv{env: e, tlsAddr: l.Addr().String()}
}

// hostPort is where a client in mode connects: the implicit-TLS
// listener for "ssl", the plain one (STLS offered) otherwise.
func (e *interopEnv) hostPort(t *testing.T, mode string) (host, port string) {
	t.Helper()
	addr := e.addr
	if mode == "ssl" {
		addr = e.tlsAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

func program(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for interop tests: %v", name, err)
	}
	return p
}

// run executes a program with HOME set to a temporary directory.
func runProgram(t *testing.T, home string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, program(t, name), args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "FETCHMAILHOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// storedLF is what a client that converts CRLF to LF should deliver.
func storedLF() []string {
	var out []string
	for _, m := range []string{msg1, msg2, msg3} {
		m = strings.ReplaceAll(m, "\r\n", "\n")
		if !strings.HasSuffix(m, "\n") {
			m += "\n"
		}
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// readMessages returns the files under dirs (recursively), CRLF turned
// into LF, sorted.
func readMessages(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.ReplaceAll(string(b), "\r\n", "\n"))
			return nil
		})
	}
	sort.Strings(out)
	return out
}

func checkMessages(t *testing.T, got []string) {
	t.Helper()
	want := storedLF()
	if len(got) != len(want) {
		t.Fatalf("retrieved %d messages, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message differs:\n got %q\nwant %q", got[i], want[i])
		}
	}
}

// checkMailbox waits for the session to end and checks what it left:
// deleted=true means the client's delete option emptied the mailbox.
func (e *interopEnv) checkMailbox(t *testing.T, deleted bool) {
	t.Helper()
	e.waitClosed(t, "alice@example.com")
	n, commits, closes, locked := e.drop.state("alice@example.com")
	if locked || closes != 1 {
		t.Fatalf("mailbox locked=%v closes=%d", locked, closes)
	}
	if deleted && (n != 0 || len(commits) != 1 || len(commits[0]) != 3) {
		t.Fatalf("after delete: %d messages left, commits %v", n, commits)
	}
	if !deleted && n != 3 {
		t.Fatalf("after keep: %d messages left, commits %v", n, commits)
	}
}

// checkTLS checks from the server's log that the login used TLS or not.
func (e *interopEnv) checkTLS(t *testing.T, mode string) {
	t.Helper()
	want := "tls=" + fmt.Sprint(mode != "plain")
	logs := e.logs.String()
	if !strings.Contains(logs, `msg="pop3 login ok"`) || !strings.Contains(logs, want) {
		t.Fatalf("server log lacks a login with %s:\n%s", want, logs)
	}
}

func maildir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInteropPoplib(t *testing.T) {
	script, err := filepath.Abs("testdata/interop/poplib_fetch.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"plain", "stls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newInteropEnv(t, mode)
			host, port := e.hostPort(t, mode)
			out := t.TempDir()
			del := map[string]string{"plain": "0", "stls": "1", "ssl": "1"}[mode]
			res := runProgram(t, t.TempDir(), "python3", script, host, port, mode, "alice@example.com", "secret", out, del)
			var sum struct {
				CapaBefore      []string `json:"capa_before"`
				CapaAfterSTLS   []string `json:"capa_after_stls"`
				CapaTransaction []string `json:"capa_transaction"`
				Stat            []int    `json:"stat"`
				UIDL            []string `json:"uidl"`
				Top             []string `json:"top"`
				Quit            string   `json:"quit"`
			}
			if err := json.Unmarshal([]byte(res), &sum); err != nil {
				t.Fatalf("script output %q: %v", res, err)
			}
			total := crlfSize([]byte(msg1)) + crlfSize([]byte(msg2)) + crlfSize([]byte(msg3))
			if fmt.Sprint(sum.Stat) != fmt.Sprintf("[3 %d]", total) || len(sum.UIDL) != 3 {
				t.Errorf("STAT %v UIDL %v", sum.Stat, sum.UIDL)
			}
			if strings.Join(sum.Top, "\n") != "From: bob@example.com\nSubject: one\n" {
				t.Errorf("TOP 1 0 = %q", sum.Top)
			}
			capa := strings.Join(sum.CapaBefore, " ")
			if mode == "ssl" != !strings.Contains(capa, "STLS") || mode == "stls" == strings.Contains(capa, "USER") {
				t.Errorf("CAPA before login (%s): %s", mode, capa)
			}
			if after := strings.Join(sum.CapaAfterSTLS, " "); mode == "stls" && (strings.Contains(after, "STLS") || !strings.Contains(after, "USER")) {
				t.Errorf("CAPA after STLS: %s", after)
			}
			if tc := strings.Join(sum.CapaTransaction, " "); strings.Contains(tc, "USER") || strings.Contains(tc, "SASL") {
				t.Errorf("CAPA in TRANSACTION: %s", tc)
			}
			checkMessages(t, readMessages(t, out))
			e.checkMailbox(t, del == "1")
			e.checkTLS(t, mode)
		})
	}
}

func TestInteropMpop(t *testing.T) {
	for _, mode := range []string{"plain", "stls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newInteropEnv(t, mode)
			host, port := e.hostPort(t, mode)
			md := maildir(t)
			home := t.TempDir()
			auth := map[string]string{"plain": "user", "stls": "plain", "ssl": "user"}[mode] // SASL PLAIN after STLS
			args := []string{"--host=" + host, "--port=" + port, "--auth=" + auth, "--user=alice@example.com",
				"--passwordeval=echo secret", "--delivery=maildir," + md, "--received-header=off",
				"--uidls-file=" + filepath.Join(home, "uidls"), "--only-new=off", "--keep=off", "--timeout=20"}
			switch mode {
			case "plain":
				args = append(args, "--tls=off")
			case "stls":
				args = append(args, "--tls=on", "--tls-starttls=on", "--tls-certcheck=off")
			case "ssl":
				args = append(args, "--tls=on", "--tls-starttls=off", "--tls-certcheck=off")
			}
			runProgram(t, home, "mpop", args...)
			if want := "method=" + map[string]string{"user": "pass", "plain": "sasl-plain"}[auth]; !strings.Contains(e.logs.String(), want) {
				t.Errorf("server log lacks %s", want)
			}
			checkMessages(t, readMessages(t, filepath.Join(md, "new"), filepath.Join(md, "cur")))
			e.checkMailbox(t, true)
			e.checkTLS(t, mode)
		})
	}
}

func TestInteropFetchmail(t *testing.T) {
	for _, mode := range []string{"plain", "stls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newInteropEnv(t, mode)
			host, port := e.hostPort(t, mode)
			home, out := t.TempDir(), t.TempDir()
			tlsOpts := map[string]string{
				"plain": "sslproto ''",
				"stls":  "sslproto 'tls1.2+' no sslcertck",
				"ssl":   "ssl no sslcertck",
			}[mode]
			rc := fmt.Sprintf(`set no bouncemail
set invisible
poll %s protocol pop3 port %s auth password timeout 20
  user "alice@example.com" there with password "secret" is "alice" here
  %s
  nokeep fetchall
  mda "/bin/sh -c 'cat > %s/msg.$$'"
`, host, port, tlsOpts, out)
			rcfile := filepath.Join(home, "fetchmailrc")
			if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
				t.Fatal(err)
			}
			runProgram(t, home, "fetchmail", "-f", rcfile, "--nosyslog", "-v")
			got := readMessages(t, out)
			checkMessages(t, got)
			e.checkMailbox(t, true)
			e.checkTLS(t, mode)
		})
	}
}

func TestInteropGetmail(t *testing.T) {
	for _, mode := range []string{"plain", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newInteropEnv(t, mode)
			host, port := e.hostPort(t, mode)
			typ := map[string]string{"plain": "SimplePOP3Retriever", "ssl": "SimplePOP3SSLRetriever"}[mode]
			home, md, user := t.TempDir(), maildir(t), ""
			if os.Geteuid() == 0 {
				// getmail refuses to deliver as root: deliver as nobody
				// into a maildir that nobody can write.
				md, user = sharedMaildir(t), "user = nobody"
			}
			rc := fmt.Sprintf(`[retriever]
type = %s
server = %s
port = %s
username = alice@example.com
password = secret
timeout = 20

[destination]
type = Maildir
path = %s/
%s

[options]
delete = true
read_all = true
delivered_to = false
received = false
verbose = 0
`, typ, host, port, md, user)
			rcfile := filepath.Join(home, "getmailrc")
			if err := os.WriteFile(rcfile, []byte(rc), 0o600); err != nil {
				t.Fatal(err)
			}
			runProgram(t, home, "getmail", "--getmaildir="+home, "--rcfile="+rcfile)
			got := readMessages(t, filepath.Join(md, "new"), filepath.Join(md, "cur"))
			for i := range got { // getmail records the unknown envelope sender
				got[i] = strings.TrimPrefix(got[i], "Return-Path: <unknown>\n")
			}
			checkMessages(t, got)
			e.checkMailbox(t, true)
			e.checkTLS(t, mode)
		})
	}
}

// sharedMaildir is a maildir any user may write, outside the 0700
// directories of t.TempDir.
func sharedMaildir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "popgate-interop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{dir, dir + "/cur", dir + "/new", dir + "/tmp"} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
