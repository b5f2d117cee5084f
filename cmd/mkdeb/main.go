// Command mkdeb writes popgate's Debian package, bin/popgate_VERSION_ARCH.deb,
// with nothing but Go: the ar archive, control.tar.gz and data.tar.gz are
// written here, reproducibly (every time from SOURCE_DATE_EPOCH).
//
//	go run ./cmd/mkdeb -binary bin/popgate -version 1.2.3 -o bin/
//
// The package installs /usr/sbin/popgate, the hardened systemd unit of
// contrib/systemd, /etc/popgate/popgate.toml as a conffile, the sendmail,
// mailq and newaliases links of a Debian mail transport agent, and a man
// page made from `popgate --help`; its postinst creates the popgate system
// user and /var/lib/popgate.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	binary := fs.String("binary", "bin/popgate", "the static popgate binary")
	contrib := fs.String("contrib", "contrib/systemd", "the directory with popgate.service, popgate.toml and popgate.sysusers")
	version := fs.String("version", "0~dev", "the version (a leading v is dropped; one not starting with a digit gets 0~ in front)")
	outDir := fs.String("o", "bin", "the directory to write popgate_VERSION_ARCH.deb into")
	epoch := fs.Int64("mtime", sourceDateEpoch(), "file times and the changelog date, in Unix seconds (default $SOURCE_DATE_EPOCH, else now)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ver, err := debVersion(*version)
	if err != nil {
		return err
	}
	arch, err := debArch(*binary)
	if err != nil {
		return err
	}
	help, err := exec.Command(*binary, "--help").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --help: %w\n%s", *binary, err, help)
	}
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	in := inputs{binary: bin, help: string(help), version: ver, arch: arch, when: time.Unix(*epoch, 0).UTC()}
	for name, dst := range map[string]*[]byte{"popgate.service": &in.unit, "popgate.toml": &in.config, "popgate.sysusers": &in.sysusers} {
		if *dst, err = os.ReadFile(filepath.Join(*contrib, name)); err != nil {
			return fmt.Errorf("contrib: %w", err)
		}
	}
	pkg, err := buildPackage(in)
	if err != nil {
		return err
	}
	out := filepath.Join(*outDir, fmt.Sprintf("popgate_%s_%s.deb", ver, arch))
	if err := writeFile(out, pkg); err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes\n", out, len(pkg))
	return nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (reproducible-builds.org).
// Without it, now: lintian rejects files dated 1970 in a package.
func sourceDateEpoch() int64 {
	var n int64
	if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &n); err != nil {
		return time.Now().Unix()
	}
	return n
}

// writeFile writes b to path through a temporary file in the same
// directory, so that a failed run leaves no half-written package.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkdeb-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
