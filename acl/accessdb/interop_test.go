//go:build interop

package accessdb

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/popgate/popgate/acl/postmaptest"
)

const (
	makemapPath = "/opt/sendmail-root/usr/sbin/makemap"
	editmapPath = "/opt/sendmail-root/usr/sbin/editmap" // sendmail's own keyed lookup: editmap -q
)

// tools holds what the real programs need: makemap wants a sendmail.cf,
// postmap a Postfix configuration directory.
type tools struct {
	dir      string
	cf       string
	postconf string
}

func newTools(t *testing.T) *tools {
	t.Helper()
	for _, p := range []string{"db5.3_verify", "db5.3_dump", "db5.3_load", "postmap", makemapPath, editmapPath} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("interop: %s is required: %v", p, err)
		}
	}
	dir := t.TempDir()
	_, postconf := postmaptest.New(t)
	tl := &tools{dir: dir, cf: filepath.Join(dir, "sendmail.cf"), postconf: postconf}
	if err := os.WriteFile(tl.cf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return tl
}

func (tl *tools) run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+tl.postconf)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// mapText returns makemap input for entries.
func mapText(es []Entry) []byte {
	var b bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&b, "%s %s\n", e.Key, e.Value)
	}
	return b.Bytes()
}

// randomEntries makes n entries a makemap text line can carry: lowercase
// keys without blanks, values of printable bytes; bigEvery > 0 makes every
// bigEvery-th value maxValue bytes long.
func randomEntries(seed uint64, n, bigEvery, maxValue int) []Entry {
	r := rand.New(rand.NewPCG(seed, 7))
	es := make([]Entry, 0, n)
	seen := map[string]bool{}
	for len(es) < n {
		var k string
		switch r.IntN(3) {
		case 0:
			k = fmt.Sprintf("192.168.%d.%d", r.IntN(256), r.IntN(256))
		case 1:
			k = fmt.Sprintf("user%d@example.com", r.IntN(1_000_000))
		default:
			k = fmt.Sprintf("ipv6:2001:db8::%x", r.IntN(1<<20))
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		v := []string{"RELAY", "OK", "REJECT", "DISCARD"}[r.IntN(4)]
		if bigEvery > 0 && len(es)%bigEvery == 0 {
			v = strings.Repeat(string(rune('a'+r.IntN(26))), maxValue-r.IntN(maxValue/4))
		}
		es = append(es, Entry{Key: []byte(k), Value: []byte(v)})
	}
	return es
}

// parseDumpP parses `db5.3_dump -p` output.
func parseDumpP(t *testing.T, out []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	var key []byte
	odd := false
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, " ") {
			continue
		}
		b := unprint(t, line[1:])
		if odd {
			got[string(key)] = string(b)
		} else {
			key = b
		}
		odd = !odd
	}
	return got
}

// unprint undoes db_dump -p escaping (\\ and \xx).
func unprint(t *testing.T, s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		b, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			t.Fatalf("bad db_dump escape in %q", s)
		}
		out = append(out, b...)
		i += 2
	}
	return out
}

func parseTabLines(out []byte) map[string]string {
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "\t")
		got[k] = v
	}
	return got
}

func wantMap(es []Entry) map[string]string {
	m := map[string]string{}
	for _, e := range es {
		m[string(e.Key)] = string(e.Value)
	}
	return m
}

func sameMap(t *testing.T, who string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d pairs, want %d", who, len(got), len(want))
	}
	bad := 0
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			if bad++; bad <= 5 {
				t.Errorf("%s: key %.60q = %.60q (present %v), want %.60q", who, k, g, ok, v)
			}
		}
	}
}

// TestInteropWrittenFilesReadByLibdb: files popgate writes pass
// db5.3_verify, and every key is found by libdb readers: postmap -q (keyed
// lookups), db5.3_dump -p and makemap -u (full dumps).
func TestInteropWrittenFilesReadByLibdb(t *testing.T) {
	tl := newTools(t)
	for _, tc := range []struct {
		name string
		es   []Entry
		be   bool
	}{
		{"small", randomEntries(1, 50, 10, 6000), false},
		{"20k", randomEntries(2, 20_000, 500, 12000), false},
		{"20k big-endian", randomEntries(3, 20_000, 500, 12000), true},
		{"edges", []Entry{
			{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("ab"), Value: []byte("2")},
			{Key: []byte(strings.Repeat("k", 1024)), Value: []byte(strings.Repeat("v", 1024))},
			{Key: []byte(strings.Repeat("l", 1025)), Value: []byte(strings.Repeat("w", 1025))},
			{Key: []byte(strings.Repeat("m", 5000)), Value: []byte(strings.Repeat("x", 4070))},
			// prefix chains mixing on-page and off-page keys (see compareKeys5)
			{Key: []byte("abc"), Value: []byte("3")}, {Key: []byte("x"), Value: []byte("x1")},
			{Key: []byte(strings.Repeat("x", 1000)), Value: []byte("x1000")},
			{Key: []byte(strings.Repeat("x", 1024)), Value: []byte("x1024")},
			{Key: []byte(strings.Repeat("x", 1025)), Value: []byte("x1025")},
			{Key: []byte(strings.Repeat("x", 3000)), Value: []byte("x3000")},
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			var err error
			if tc.be {
				data, err = encode5(tc.es, bigEndian())
			} else {
				data, err = Encode(tc.es, Hash)
			}
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(tl.dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(base+".db", data, 0o644); err != nil {
				t.Fatal(err)
			}
			tl.run(t, nil, "db5.3_verify", base+".db")
			want := wantMap(tc.es)
			sameMap(t, "db5.3_dump -p", parseDumpP(t, tl.run(t, nil, "db5.3_dump", "-p", base+".db")), want)
			sameMap(t, "makemap -u", parseTabLines(tl.run(t, nil, makemapPath, "-C", tl.cf, "-u", "hash", base)), want)
			var keys bytes.Buffer
			for _, e := range tc.es {
				keys.Write(e.Key)
				keys.WriteByte('\n')
			}
			sameMap(t, "postmap -q -", parseTabLines(tl.run(t, keys.Bytes(), "postmap", "-q", "-", "hash:"+base)), want)
			// sendmail's map code (libsmdb), one process per key: a sample.
			for i := 0; i < len(tc.es); i += max(1, len(tc.es)/25) {
				e := tc.es[i]
				if len(e.Key) > 512 {
					continue // editmap takes the key on its command line
				}
				got := strings.TrimSuffix(string(tl.run(t, nil, editmapPath, "-C", tl.cf, "-q", "hash", base, string(e.Key))), "\n")
				if got != string(e.Value) {
					t.Errorf("editmap -q %.60q = %.60q, want %.60q", e.Key, got, e.Value)
				}
			}
		})
	}
}

// TestInteropLibdbWritesIntoOurFile: libdb can also edit a map popgate
// wrote (editmap adds and deletes keys in place), and the result still
// verifies and decodes.
func TestInteropLibdbWritesIntoOurFile(t *testing.T) {
	tl := newTools(t)
	es := randomEntries(4, 5000, 400, 9000)
	data, err := Encode(es, Hash)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(tl.dir, "edited")
	if err := os.WriteFile(base+".db", data, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		k, v := fmt.Sprintf("added%d.example.com", i), fmt.Sprintf("RELAY %d", i)
		tl.run(t, nil, editmapPath, "-C", tl.cf, "-u", "hash", base, k, v)
		es = append(es, Entry{Key: []byte(k), Value: []byte(v)})
	}
	tl.run(t, nil, editmapPath, "-C", tl.cf, "-x", "hash", base, string(es[0].Key))
	es = es[1:]
	tl.run(t, nil, "db5.3_verify", base+".db")
	checkFile(t, base+".db", es)
}

// TestInteropToolFilesReadByDecode: maps written by makemap, postmap and
// db5.3_load from random inputs are read back exactly by Decode and Get.
func TestInteropToolFilesReadByDecode(t *testing.T) {
	tl := newTools(t)
	for _, n := range []int{30, 20_000} {
		// makemap reads lines of at most 1022 bytes, so its big values stay
		// on the page; postmap and db5.3_load get values of several pages.
		short := randomEntries(uint64(n), n, 300, 1000)
		long := randomEntries(uint64(n)+1, n, 300, 12000)
		t.Run(fmt.Sprint("makemap/", n), func(t *testing.T) {
			base := filepath.Join(tl.dir, fmt.Sprint("mm", n))
			tl.run(t, mapText(short), makemapPath, "-C", tl.cf, "hash", base)
			checkFile(t, base+".db", short)
		})
		t.Run(fmt.Sprint("postmap/", n), func(t *testing.T) {
			base := filepath.Join(tl.dir, fmt.Sprint("pm", n))
			if err := os.WriteFile(base, mapText(long), 0o644); err != nil {
				t.Fatal(err)
			}
			tl.run(t, nil, "postmap", "hash:"+base)
			checkFile(t, base+".db", postmapForm(long))
		})
		t.Run(fmt.Sprint("db5.3_load/", n), func(t *testing.T) {
			var in bytes.Buffer
			for _, e := range long {
				fmt.Fprintf(&in, "%s\n%s\n", e.Key, e.Value)
			}
			path := filepath.Join(tl.dir, fmt.Sprint("ld", n, ".db"))
			tl.run(t, in.Bytes(), "db5.3_load", "-T", "-t", "hash", path)
			checkFile(t, path, long)
		})
	}
}

func checkFile(t *testing.T, path string, want []Entry) {
	t.Helper()
	m, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkMap(t, m, want)
	keys := make([]string, 0, len(want))
	for _, e := range m.Entries() {
		keys = append(keys, string(e.Key))
	}
	slices.Sort(keys)
	if len(slices.Compact(keys)) != len(want) {
		t.Errorf("Entries has duplicates or misses keys")
	}
}
