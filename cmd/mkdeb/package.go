package main

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"debug/elf"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Who the package names as its maintainer (the project's git identity).
const maintainer = "popgate developers <dev@popgate.invalid>"

// inputs is everything a package is made from.
type inputs struct {
	binary                 []byte
	help                   string // `popgate --help`
	unit, config, sysusers []byte // contrib/systemd
	version, arch          string
	when                   time.Time
}

// validVersion is a Debian upstream version without a revision (a native
// package): a digit, then alphanumerics and . + ~ (deb-version(7)).
var validVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// commitHash is what git describe --always prints without a tag.
var commitHash = regexp.MustCompile(`^[0-9a-f]{7,40}(-dirty)?$`)

// debVersion turns a git-describe version (v1.2.3, v1.2.3-4-gabc-dirty,
// abc1234, 9ca1b9f) into a Debian one (1.2.3, 1.2.3+4.gabc.dirty, 0~abc1234,
// 0~9ca1b9f).
func debVersion(v string) (string, error) {
	v = strings.TrimPrefix(v, "v")
	if v == "" {
		return "", fmt.Errorf("empty version")
	}
	// A bare commit hash (git describe without a tag) may start with a
	// digit, but it is not a version: 9ca1b9f would sort above 1.0.
	if v[0] < '0' || v[0] > '9' || commitHash.MatchString(v) {
		v = "0~" + v
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		v = v[:i] + "+" + strings.ReplaceAll(v[i+1:], "-", ".")
	}
	if !validVersion.MatchString(v) {
		return "", fmt.Errorf("version %q: not a Debian version (digits, letters, . + ~)", v)
	}
	return v, nil
}

// debArch returns the Debian architecture of a static Linux ELF binary.
func debArch(binary string) (string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return "", fmt.Errorf("binary: %w", err)
	}
	defer f.Close()
	if slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		return "", fmt.Errorf("binary %s is dynamically linked: build it with CGO_ENABLED=0 (go tool task build)", binary)
	}
	arch, ok := map[elf.Machine]string{
		elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "i386", elf.EM_ARM: "armhf",
		elf.EM_PPC64: "ppc64el", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64",
	}[f.Machine]
	if !ok {
		return "", fmt.Errorf("binary %s: no Debian architecture for %v", binary, f.Machine)
	}
	return arch, nil
}

// The Debian MTA interface: the programs other packages call to send mail
// (Debian Policy 11.6), all links to popgate, which looks at its name.
// The places are Postfix's.
var mtaLinks = map[string]string{
	"/usr/sbin/sendmail":  "popgate",
	"/usr/lib/sendmail":   "../sbin/popgate",
	"/usr/bin/mailq":      "../sbin/popgate",
	"/usr/bin/newaliases": "../sbin/popgate",
}

// packageFiles lays out data.tar.
func packageFiles(in inputs) ([]entry, error) {
	unit := bytes.ReplaceAll(in.unit, []byte("/usr/local/bin/popgate"), []byte("/usr/sbin/popgate"))
	if bytes.Equal(unit, in.unit) {
		return nil, fmt.Errorf("contrib: popgate.service does not run /usr/local/bin/popgate; the package would start a binary it does not install")
	}
	man, err := gzipN(manPage(in.help, in.version, in.when), in.when)
	if err != nil {
		return nil, err
	}
	changelog, err := gzipN([]byte(changelogText(in.version, in.when)), in.when)
	if err != nil {
		return nil, err
	}
	files := []entry{
		{path: "/usr/sbin/popgate", mode: 0o755, data: in.binary},
		{path: "/etc/popgate/popgate.toml", mode: 0o644, data: in.config, config: true},
		{path: "/lib/systemd/system/popgate.service", mode: 0o644, data: unit},
		{path: "/usr/lib/sysusers.d/popgate.conf", mode: 0o644, data: in.sysusers},
		{path: "/usr/share/man/man8/popgate.8.gz", mode: 0o644, data: man},
		{path: "/usr/share/doc/popgate/copyright", mode: 0o644, data: []byte(copyrightText(in.when))},
		{path: "/usr/share/lintian/overrides/popgate", mode: 0o644, data: []byte(lintianOverrides)},
		{path: "/usr/share/doc/popgate/changelog.gz", mode: 0o644, data: changelog},
	}
	for p, target := range mtaLinks {
		files = append(files, entry{path: p, link: target})
		name := p[strings.LastIndexByte(p, '/')+1:]
		if !slices.ContainsFunc(files, func(e entry) bool { return e.path == "/usr/share/man/man8/"+name+".8.gz" }) {
			files = append(files, entry{path: "/usr/share/man/man8/" + name + ".8.gz", link: "popgate.8.gz"})
		}
	}
	return files, nil
}

// gzipN compresses like gzip -9n: no name, a fixed time.
func gzipN(b []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	w.ModTime = when
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildPackage returns the .deb bytes.
func buildPackage(in inputs) ([]byte, error) {
	files, err := packageFiles(in)
	if err != nil {
		return nil, err
	}
	var size int64
	var md5sums strings.Builder
	var conffiles strings.Builder
	slices.SortFunc(files, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	for _, f := range files {
		size += (int64(len(f.data)) + 1023) / 1024
		if f.link == "" && !f.dir {
			fmt.Fprintf(&md5sums, "%x  %s\n", md5.Sum(f.data), f.path[1:])
		}
		if f.config {
			conffiles.WriteString(f.path + "\n")
		}
	}
	data, err := tarGz(files, in.when)
	if err != nil {
		return nil, err
	}
	control, err := tarGz([]entry{
		{path: "/control", mode: 0o644, data: []byte(controlText(in.version, in.arch, size))},
		{path: "/md5sums", mode: 0o644, data: []byte(md5sums.String())},
		{path: "/conffiles", mode: 0o644, data: []byte(conffiles.String())},
		{path: "/postinst", mode: 0o755, data: []byte(postinst)},
		{path: "/prerm", mode: 0o755, data: []byte(prerm)},
		{path: "/postrm", mode: 0o755, data: []byte(postrm)},
	}, in.when)
	if err != nil {
		return nil, err
	}
	return arArchive([]arMember{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.gz", control},
		{"data.tar.gz", data},
	}, in.when)
}
