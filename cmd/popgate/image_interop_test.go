//go:build interop

package main

// The image built by `go tool task image` is loaded into Podman, its
// filesystem exported, and /popgate run from it as the image's user 65532
// in a chroot of that filesystem: Podman's runtime cannot start containers
// on the CI machine (it is refused setting rlimits), so the chroot stands
// in for the container. Then POP3 and SMTP are spoken to it.

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
	"github.com/popgate/popgate/smtp/smtptest"
)

// imageUID is the USER of the image (and of the Dockerfile).
const imageUID = 65532

// podman runs podman and returns its trimmed output.
func podman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(need(t, "podman"), args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// untar unpacks an exported container filesystem into root, keeping
// owners and modes (the test runs as root, as CI does).
func untar(t *testing.T, archive, root string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(root, filepath.Clean("/"+h.Name))
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(name, mode)
		case tar.TypeReg:
			var w *os.File
			if w, err = os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode); err == nil {
				_, err = io.Copy(w, tr)
				err = errors.Join(err, w.Close())
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, name)
		default:
			t.Fatalf("exported filesystem: %s has tar type %q", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Lchown(name, h.Uid, h.Gid)
		}
		if err == nil && h.Typeflag != tar.TypeSymlink {
			err = os.Chmod(name, mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// inImage returns a command that runs argv inside root as the image's
// user, with the image's environment.
func inImage(root string, argv ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: imageUID, Gid: imageUID},
		Setpgid:    true,
	}
	return cmd
}

// TestInteropImageServes: the image archive loads into Podman, and its
// filesystem, run as user 65532 with the image's entrypoint and its own
// configuration (listeners moved to loopback ports, as a user mounts a
// configuration of their own), accepts mail over SMTP and serves it over
// POP3, answers the health check, and keeps its data in /data.
func TestInteropImageServes(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "popgate-image.tar")
	tag := fmt.Sprintf("popgate-interop-%d", os.Getpid())
	mk := exec.Command("go", "run", "../mkimage", "-binary", binary(t), "-config", "../../contrib/docker/popgate.toml",
		"-repo", "localhost/"+tag, "-version", "test", "-o", archive)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	podman(t, "load", "-q", "-i", archive)
	t.Cleanup(func() {
		_ = exec.Command("podman", "rmi", "-f", "localhost/"+tag+":test", "localhost/"+tag+":latest").Run()
	})
	if got := podman(t, "image", "inspect", "--format", "{{.User}} {{.Config.Entrypoint}} {{.HealthCheck.Test}}", "localhost/"+tag+":test"); got != "65532:65532 [/popgate] [CMD /popgate health --config /etc/popgate/popgate.toml]" {
		t.Errorf("podman sees user, entrypoint, health check %q", got)
	}
	cid := podman(t, "create", "localhost/"+tag+":test")
	t.Cleanup(func() { _ = exec.Command("podman", "rm", "-f", cid).Run() })
	exported := filepath.Join(dir, "fs.tar")
	podman(t, "export", "-o", exported, cid)

	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	untar(t, exported, root)
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/usr/bin/sh", "/busybox"} {
		if _, err := os.Lstat(filepath.Join(root, sh)); err == nil {
			t.Errorf("the image has %s: it should have no shell", sh)
		}
	}

	// The image's configuration, with loopback listeners on free ports.
	confFile := filepath.Join(root, "etc/popgate/popgate.toml")
	conf, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	listen := regexp.MustCompile(`\[":(25|110|465|587|995)"\]`)
	if n := len(listen.FindAll(conf, -1)); n != 5 {
		t.Fatalf("the image's configuration has %d of the 5 listeners this test moves:\n%s", n, conf)
	}
	if err := os.WriteFile(confFile, listen.ReplaceAll(conf, []byte(`["127.0.0.1:0"]`)), 0o644); err != nil {
		t.Fatal(err)
	}

	add := inImage(root, "/popgate", "user", "add", "--config", "/etc/popgate/popgate.toml", "--stdin", "alice@example.com")
	add.Stdin = strings.NewReader("a long passphrase\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("popgate user add in the image: %v\n%s", err, out)
	}

	// The image's ENTRYPOINT and CMD.
	serve := inImage(root, "/popgate", "serve", "--config", "/etc/popgate/popgate.toml")
	stderr := &lockedBuffer{}
	serve.Stderr = stderr
	out, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("popgate log:\n%s", stderr)
		}
	})
	addrs := map[string]string{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
			addrs[m[1]] = m[2]
		}
		if strings.Contains(sc.Text(), "control socket") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if addrs["pop3.listen"] == "" || addrs["smtp.listen"] == "" {
		t.Fatalf("popgate in the image did not print its listeners %v:\n%s", addrs, stderr)
	}

	health := inImage(root, "/popgate", "health", "--config", "/etc/popgate/popgate.toml")
	if out, err := health.CombinedOutput(); err != nil {
		t.Errorf("the HEALTHCHECK command fails: %v\n%s", err, out)
	}

	smtp := smtptest.DialFrom(t, "127.0.0.1", addrs["smtp.listen"])
	smtp.Hello("client.example.net")
	smtp.Expect("MAIL FROM:<friend@example.net>", "250")
	smtp.Expect("RCPT TO:<nobody@example.com>", "550")
	smtp.Expect("RCPT TO:<alice@example.com>", "250")
	smtp.Expect("DATA", "354")
	smtp.Expect("Subject: from the image\r\n\r\nserved from a chroot of the image\r\n.", "250")
	smtp.Expect("QUIT", "221")

	pop := pop3test.DialFrom(t, "127.0.0.1", addrs["pop3.listen"])
	pop.Expect("", "+OK")
	pop.Expect("USER alice@example.com", "+OK")
	pop.Expect("PASS wrong passphrase", "-ERR")
	pop = pop3test.DialFrom(t, "127.0.0.1", addrs["pop3.listen"])
	pop.Login("alice@example.com", "a long passphrase")
	pop.Expect("STAT", "+OK 1 ")
	var body strings.Builder
	body.WriteString(pop.Retr(1))
	if !strings.Contains(body.String(), "served from a chroot of the image") {
		t.Errorf("RETR 1:\n%s", body.String())
	}
	pop.Expect("QUIT", "+OK")

	// The mail is in the /data volume, owned by the image's user.
	var found bool
	_ = filepath.WalkDir(filepath.Join(root, "data", "mail"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			found = true
			if fi, err := os.Stat(p); err == nil && fi.Sys().(*syscall.Stat_t).Uid != imageUID {
				t.Errorf("%s is owned by uid %d, want %d", p, fi.Sys().(*syscall.Stat_t).Uid, imageUID)
			}
		}
		return nil
	})
	if !found {
		t.Error("no message file under /data/mail")
	}
}
