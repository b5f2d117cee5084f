//go:build interop

package acl

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popgate/popgate/acl/postmaptest"
)

// makemapPath finds sendmail's makemap: the unpacked copy first, then PATH.
func makemapPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/opt/sendmail-root/usr/sbin/makemap", "/opt/sendmail-root/usr/libexec/sendmail/makemap"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("makemap")
	if err != nil {
		t.Fatalf("makemap not installed: %v", err)
	}
	return p
}

// TestInteropMakemapKeys checks that the sendmail flavor's static entries
// are byte for byte what `makemap hash` stores for the same access file:
// tags and keys lowercased, values verbatim.
func TestInteropMakemapKeys(t *testing.T) {
	makemap := makemapPath(t)
	// IPv6 keys in the full form: makemap stores keys as written (only
	// lowercased), and the full form is what sendmail looks up.
	access := `# comment
192.168.0		RELAY
Connect:Spamford.COM	REJECT
ok.spamford.com		OK
From:Spammer@AOL.com	ERROR:5.7.1:"550 Go away"
To:Friend.Example	RELAY
To:gone@		ERROR:5.1.1:550 User has left
Spam:abuse@		FRIEND
IPv6:2002:C0A8:0:0:0:0:0:1	RELAY
Connect:IPv6:2002:c0a8	REJECT
GreetPause:10.1		5000
old.example		"550 Old style"
`
	rules, err := ParseRulesString(access)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "access")
	cmd := exec.Command(makemap, "-C", "/dev/null", "hash", db)
	cmd.Stdin = strings.NewReader(access)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makemap hash: %v\n%s", err, out)
	}
	out, err := exec.Command(makemap, "-C", "/dev/null", "-u", "hash", db).Output()
	if err != nil {
		t.Fatalf("makemap -u: %v", err)
	}
	var fromMakemap []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("makemap -u line %q", line)
		}
		fromMakemap = append(fromMakemap, k+"\x00"+v)
	}
	var ours []string
	for _, e := range Entries(rules, nil, FlavorSendmail) {
		ours = append(ours, e.Key+"\x00"+e.Value)
	}
	slices.Sort(fromMakemap)
	slices.Sort(ours)
	if !slices.Equal(fromMakemap, ours) {
		t.Errorf("makemap stored\n%s\nEntries gives\n%s",
			bytes.ReplaceAll([]byte(strings.Join(fromMakemap, "\n")), []byte{0}, []byte(" = ")),
			bytes.ReplaceAll([]byte(strings.Join(ours, "\n")), []byte{0}, []byte(" = ")))
	}
}

// TestInteropPostmapEntries builds the postfix flavor with postmap and
// reads every key back with postmap -q.
func TestInteropPostmapEntries(t *testing.T) {
	postmap, dir := postmaptest.New(t)
	rules, err := ParseRulesString(mirrorAccess)
	if err != nil {
		t.Fatal(err)
	}
	entries := Entries(rules, []Grant{{IP: ip("198.51.100.7")}, {IP: ip("2001:db8::5")}}, FlavorPostfix)
	var text strings.Builder
	for _, e := range entries {
		text.WriteString(e.Key + " " + e.Value + "\n")
	}
	src := filepath.Join(dir, "popgate")
	postmaptest.Build(t, postmap, dir, "hash", src, text.String())
	for _, e := range entries {
		out, err := exec.Command(postmap, "-c", dir, "-q", e.Key, "hash:"+src).Output()
		if err != nil || strings.TrimSpace(string(out)) != e.Value {
			t.Errorf("postmap -q %s = %q (%v), want %q", e.Key, out, err, e.Value)
		}
	}
}
