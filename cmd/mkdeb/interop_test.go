//go:build interop

package main

// The package built from the real binary (POPGATE_BIN) is checked by
// lintian, installed with dpkg into a clean Debian root (debootstrap
// minbase, made by .ci/debian-root.sh; POPGATE_DEBROOT names its tarball),
// and popgate is started from there as the user its postinst created.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildDeb runs mkdeb on POPGATE_BIN and returns the package's path.
func buildDeb(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("POPGATE_BIN")
	if bin == "" {
		t.Fatal("POPGATE_BIN is not set: run through `go tool task interop`")
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "run", ".", "-binary", bin, "-contrib", "../../contrib/systemd",
		"-version", "1.0~interop", "-o", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mkdeb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "popgate_1.0~interop_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("mkdeb wrote %v:\n%s", debs, out)
	}
	return debs[0]
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestInteropDebLintian: lintian, Debian's package checker, reports no
// error and no warning (the one overridden tag is explained in the
// package).
func TestInteropDebLintian(t *testing.T) {
	deb := buildDeb(t)
	cmd := exec.Command("lintian", "--fail-on", "error,warning", deb)
	out, err := cmd.CombinedOutput()
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	if err != nil {
		t.Errorf("lintian: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
	info := mustRun(t, "dpkg-deb", "--field", deb, "Provides", "Conflicts", "Replaces")
	for _, want := range []string{"Provides: mail-transport-agent", "Conflicts: mail-transport-agent", "Replaces: mail-transport-agent"} {
		if !strings.Contains(info, want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
}

// passwdEntry returns uid, gid, home and shell of user in root/etc/passwd.
func passwdEntry(t *testing.T, root, user string) (uid, gid int, home, shell string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == user {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			return uid, gid, f[5], f[6]
		}
	}
	t.Fatalf("no user %s in the root's /etc/passwd", user)
	return
}

// TestInteropDebInstalls installs the package in a clean Debian root,
// checks what postinst made, runs popgate from there as the popgate user
// (as the systemd unit does) for an SMTP delivery and a POP3 retrieval,
// then removes and purges the package.
func TestInteropDebInstalls(t *testing.T) {
	tarball := os.Getenv("POPGATE_DEBROOT")
	if tarball == "" {
		t.Fatal("POPGATE_DEBROOT is not set: run .ci/debian-root.sh and pass the tarball it prints")
	}
	deb := buildDeb(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "tar", "-C", root, "-xpf", tarball)
	mustRun(t, "cp", deb, filepath.Join(root, "tmp", "popgate.deb"))
	t.Log(mustRun(t, "chroot", root, "dpkg", "-i", "/tmp/popgate.deb"))

	status := mustRun(t, "chroot", root, "dpkg-query", "-W", "-f", "${Status} ${Provides}\n${Conffiles}\n", "popgate")
	if !strings.HasPrefix(status, "install ok installed mail-transport-agent") || !strings.Contains(status, "/etc/popgate/popgate.toml") {
		t.Errorf("dpkg-query: %s", status)
	}
	uid, gid, home, shell := passwdEntry(t, root, "popgate")
	if uid == 0 || uid >= 1000 || home != "/var/lib/popgate" || shell != "/usr/sbin/nologin" {
		t.Errorf("popgate user: uid %d home %s shell %s; want a system user with no login", uid, home, shell)
	}
	fi, err := os.Stat(filepath.Join(root, "var/lib/popgate"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/popgate: owner %d mode %v, want %d and 0700", st.Uid, fi.Mode().Perm(), uid)
	}
	for link, want := range map[string]string{"usr/sbin/sendmail": "popgate", "usr/bin/mailq": "../sbin/popgate", "usr/bin/newaliases": "../sbin/popgate", "usr/lib/sendmail": "../sbin/popgate"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("/%s -> %q (%v), want %s", link, got, err, want)
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/popgate.service"))
	if err != nil || !bytes.Contains(unit, []byte("ExecStart=/usr/sbin/popgate serve")) || !bytes.Contains(unit, []byte("NoNewPrivileges=yes")) {
		t.Errorf("the installed unit does not start /usr/sbin/popgate hardened: %v\n%s", err, unit)
	}

	// The administrator edits the conffile: loopback listeners on free
	// ports (the host may run an MTA on 25), no metrics listener.
	confPath := filepath.Join(root, "etc/popgate/popgate.toml")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	conf = regexp.MustCompile(`\[":(25|110|465|587|995)"\]`).ReplaceAll(conf, []byte(`["127.0.0.1:0"]`))
	conf = regexp.MustCompile(`(?m)^listen = "127.0.0.1:9154"`).ReplaceAll(conf, []byte(`listen = ""`))
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	asPopgate := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/usr/sbin/popgate", args...)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}
		return cmd
	}
	if out, err := asPopgate("check", "--config", "/etc/popgate/popgate.toml").CombinedOutput(); err != nil {
		t.Fatalf("popgate check (the unit's ExecStartPre): %v\n%s", err, out)
	}
	add := asPopgate("user", "add", "--config", "/etc/popgate/popgate.toml", "--stdin", "alice@example.com")
	add.Stdin = strings.NewReader("a long passphrase\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("popgate user add: %v\n%s", err, out)
	}
	serve := asPopgate("serve", "--config", "/etc/popgate/popgate.toml")
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = serve.Process.Signal(syscall.SIGTERM)
			_ = serve.Wait()
		}
	}
	t.Cleanup(stop)
	addrs := map[string]string{}
	listen := regexp.MustCompile(`^\s+(pop3\.listen|smtp\.listen)\s+(\S+)$`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := listen.FindStringSubmatch(sc.Text()); m != nil {
			addrs[m[1]] = m[2]
		}
		if strings.Contains(sc.Text(), "control socket") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if addrs["pop3.listen"] == "" || addrs["smtp.listen"] == "" {
		stop()
		t.Fatalf("popgate did not print its listeners %v:\n%s", addrs, stderr.String())
	}

	dialog(t, addrs["smtp.listen"], []step{
		{"", "220"}, {"EHLO client.example.net", "250"}, {"MAIL FROM:<friend@example.net>", "250"},
		{"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"},
		{"Subject: installed\r\n\r\nfrom the Debian package\r\n.", "250"}, {"QUIT", "221"},
	})
	dialog(t, addrs["pop3.listen"], []step{
		{"", "+OK"}, {"USER alice@example.com", "+OK"}, {"PASS a long passphrase", "+OK"},
		{"STAT", "+OK 1 "}, {"QUIT", "+OK"},
	})
	stop()

	mustRun(t, "chroot", root, "dpkg", "--purge", "popgate")
	for _, gone := range []string{"usr/sbin/popgate", "usr/sbin/sendmail", "etc/popgate/popgate.toml"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("/%s is still there after dpkg --purge", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/popgate/users")); err != nil {
		t.Errorf("purge deleted the mail data: %v", err)
	}
}

// step is one command of a line dialog and the start of its reply.
type step struct{ send, want string }

// dialog speaks steps to addr, reading one reply (all lines of a
// multi-line SMTP reply) per step.
func dialog(t *testing.T, addr string, steps []step) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	for _, s := range steps {
		if s.send != "" {
			fmt.Fprintf(c, "%s\r\n", s.send)
		}
		var reply string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %q: %v", addr, s.send, err)
			}
			reply = strings.TrimRight(line, "\r\n")
			if len(reply) < 4 || reply[3] != '-' {
				break
			}
		}
		if !strings.HasPrefix(reply, s.want) {
			t.Fatalf("%s: %q: got %q, want %q", addr, s.send, reply, s.want)
		}
	}
}
