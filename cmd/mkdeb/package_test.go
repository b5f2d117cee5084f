package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":              "1.2.3",
		"1.2.3":               "1.2.3",
		"v1.2.3-4-gabc1234":   "1.2.3+4.gabc1234",
		"v1.2.3-4-gabc-dirty": "1.2.3+4.gabc.dirty",
		"abc1234":             "0~abc1234",
		"abc1234-dirty":       "0~abc1234+dirty",
		"9ca1b9f":             "0~9ca1b9f",
		"9ca1b9f-dirty":       "0~9ca1b9f+dirty",
		"2":                   "2",
		"dev":                 "0~dev",
	} {
		if got, err := debVersion(in); err != nil || got != want {
			t.Errorf("debVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "v", "1.0 beta", "1.0_rc1", "1:2.0", "é"} {
		if got, err := debVersion(bad); err == nil {
			t.Errorf("debVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// readTarGz returns the entries of a gzip-compressed tar by name.
func readTarGz(t *testing.T, b []byte) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	hs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		hs[h.Name] = h
		if data[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// readAr splits an ar archive, checking each header's fixed layout.
func readAr(t *testing.T, b []byte) ([]string, map[string][]byte) {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, []byte("!<arch>\n"))
	if !ok {
		t.Fatal("no ar magic")
	}
	var names []string
	members := map[string][]byte{}
	for len(rest) > 0 {
		if len(rest) < 60 || string(rest[58:60]) != "`\n" {
			t.Fatalf("bad ar header %q", rest[:min(60, len(rest))])
		}
		name := strings.TrimSpace(string(rest[:16]))
		var size int
		if _, err := fmt.Sscan(string(rest[48:58]), &size); err != nil {
			t.Fatal(err)
		}
		rest = rest[60:]
		names = append(names, name)
		members[name] = rest[:size]
		rest = rest[size+size%2:]
	}
	return names, members
}

func testInputs(t *testing.T) inputs {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return inputs{
		binary: []byte("\x7fELF not really"), help: "usage: popgate COMMAND [--config FILE] [ARGS]\n\ncommands:\n  serve    run every listener\n  user     add|del: manage the users file\n",
		unit: read("popgate.service"), config: read("popgate.toml"), sysusers: read("popgate.sysusers"),
		version: "1.2.3", arch: "amd64", when: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
	}
}

// TestBuildPackage takes a package apart as dpkg would: the ar members in
// order, the control fields, md5sums that match the files, the conffile,
// the links and the maintainer scripts' modes.
func TestBuildPackage(t *testing.T) {
	in := testInputs(t)
	pkg, err := buildPackage(in)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := buildPackage(in)
	if !bytes.Equal(pkg, again) {
		t.Error("two builds of the same inputs differ: the package is not reproducible")
	}
	names, members := readAr(t, pkg)
	if strings.Join(names, " ") != "debian-binary control.tar.gz data.tar.gz" || string(members["debian-binary"]) != "2.0\n" {
		t.Fatalf("ar members %v, debian-binary %q", names, members["debian-binary"])
	}
	ch, control := readTarGz(t, members["control.tar.gz"])
	dh, data := readTarGz(t, members["data.tar.gz"])

	fields := string(control["./control"])
	for _, want := range []string{"Package: popgate\n", "Version: 1.2.3\n", "Architecture: amd64\n",
		"Provides: mail-transport-agent\n", "Conflicts: mail-transport-agent\n", "Replaces: mail-transport-agent\n", "Depends: passwd\n"} {
		if !strings.Contains(fields, want) {
			t.Errorf("control lacks %q:\n%s", want, fields)
		}
	}
	if got := string(control["./conffiles"]); got != "/etc/popgate/popgate.toml\n" {
		t.Errorf("conffiles %q", got)
	}
	for _, script := range []string{"./postinst", "./prerm", "./postrm"} {
		if h := ch[script]; h == nil || h.Mode != 0o755 || !strings.HasPrefix(string(control[script]), "#!/bin/sh\nset -e\n") {
			t.Errorf("%s: %+v", script, h)
		}
	}
	if !strings.Contains(string(control["./postinst"]), "useradd --system") {
		t.Error("postinst does not create the system user")
	}

	sums := strings.Split(strings.TrimSpace(string(control["./md5sums"])), "\n")
	regular := 0
	for name, h := range dh {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "root" {
			t.Errorf("%s owned by %d/%s, want root", name, h.Uid, h.Uname)
		}
		if h.Typeflag == tar.TypeReg {
			regular++
			line := fmt.Sprintf("%x  %s", md5.Sum(data[name]), strings.TrimPrefix(name, "./"))
			if !strings.Contains(string(control["./md5sums"]), line+"\n") {
				t.Errorf("md5sums lacks %q", line)
			}
		}
	}
	if regular != len(sums) {
		t.Errorf("%d files but %d md5sums", regular, len(sums))
	}
	if string(data["./usr/sbin/popgate"]) != string(in.binary) || dh["./usr/sbin/popgate"].Mode != 0o755 {
		t.Error("/usr/sbin/popgate is not the binary, executable")
	}
	for link, target := range mtaLinks {
		if h := dh["."+link]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: %+v, want a link to %s", link, h, target)
		}
	}
	unit := string(data["./lib/systemd/system/popgate.service"])
	if !strings.Contains(unit, "ExecStart=/usr/sbin/popgate serve") || strings.Contains(unit, "/usr/local/bin") {
		t.Errorf("the unit does not run /usr/sbin/popgate:\n%s", unit)
	}
	for _, dir := range []string{"./", "./usr/", "./usr/share/man/man8/", "./etc/popgate/"} {
		if h := dh[dir]; h == nil || h.Typeflag != tar.TypeDir {
			t.Errorf("no directory entry %s before its files", dir)
		}
	}
	gz, err := gzip.NewReader(bytes.NewReader(data["./usr/share/man/man8/popgate.8.gz"]))
	if err != nil {
		t.Fatal(err)
	}
	man, _ := io.ReadAll(gz)
	if !strings.Contains(string(man), ".TP\n.B user\nadd|del: manage the users file\n") {
		t.Errorf("man page lacks the user command:\n%s", man)
	}
}

func TestBuildPackageRefusesUnitForOtherPath(t *testing.T) {
	in := testInputs(t)
	in.unit = bytes.ReplaceAll(in.unit, []byte("/usr/local/bin/popgate"), []byte("/opt/popgate"))
	if _, err := buildPackage(in); err == nil || !strings.Contains(err.Error(), "/usr/local/bin/popgate") {
		t.Errorf("buildPackage with a unit that runs /opt/popgate: %v", err)
	}
}

func TestArArchiveRefusesLongNames(t *testing.T) {
	for _, name := range []string{"a-name-longer-than-16", "with space", "slash/"} {
		if _, err := arArchive([]arMember{{name, nil}}, time.Unix(0, 0)); err == nil {
			t.Errorf("arArchive accepted member name %q", name)
		}
	}
}

// FuzzManPage: whatever the help text, every line of the page that starts
// a roff request is one manPage wrote, so text from the help cannot inject
// requests, and the command entries come through.
func FuzzManPage(f *testing.F) {
	f.Add("usage: popgate COMMAND\n\ncommands:\n  serve    run every listener\n")
	f.Add(".so /etc/passwd\n'br\n  x  \\fBbold\\fR -- dash\n")
	f.Fuzz(func(t *testing.T, help string) {
		page := string(manPage(help, "1.0", time.Unix(0, 0)))
		for _, line := range strings.Split(page, "\n") {
			if !strings.HasPrefix(line, ".") && !strings.HasPrefix(line, "'") {
				continue
			}
			req, _, _ := strings.Cut(line, " ")
			switch req {
			case ".TH", ".SH", ".TP", ".B", ".BR", ".I", ".PP":
			default:
				t.Fatalf("help %q put request %q in the page", help, line)
			}
		}
	})
}
