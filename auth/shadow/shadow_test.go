package shadow

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePasswd(t *testing.T) {
	t.Parallel()
	in := "root:x:0:0:root:/root:/bin/bash\n" +
		"\n" +
		"alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\r\n" +
		"bob:$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8.:1001:1001::/home/bob:/bin/false\n" +
		"+@staff::::::\n"
	got, err := ParsePasswd(strings.NewReader(in), "passwd")
	if err != nil {
		t.Fatal(err)
	}
	want := []PasswdEntry{
		{"root", "x", 0, 1},
		{"alice", "x", 1000, 3},
		{"bob", "$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8.", 1001, 4},
		{"+@staff", "", -1, 5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestParseRejects: every malformed file is refused with file:line.
func TestParseRejects(t *testing.T) {
	t.Parallel()
	passwd := []struct{ in, want string }{
		{"root:x:0:0:root:/root\n", "p:1: 6 fields, want 7"},
		{"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh:extra\n", "p:2: 8 fields"},
		{":x:1000:1000::/:/bin/sh\n", "p:1: empty user name"},
		{"alice:x:abc:1000::/:/bin/sh\n", `p:1: user alice: UID "abc" is not a number`},
		{"alice:x:-1:1000::/:/bin/sh\n", `UID "-1" is not a number`},
		{"alice:x:1000:1000::/:/bin/sh\nalice:x:1001:1001::/:/bin/sh\n", "p:2: user alice listed again (first on line 1)"},
		{"alice:x:1000:1000::/:/bin/sh\nbo\x00b:x:1:1::/:/bin/sh\n", "p:2: NUL byte"},
	}
	for _, c := range passwd {
		_, err := ParsePasswd(strings.NewReader(c.in), "p")
		var le *LineError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &le) {
			t.Errorf("ParsePasswd(%q) = %v, want a LineError with %q", c.in, err, c.want)
		}
	}
	shadow := []struct{ in, want string }{
		{"root:*:19000:0:99999:7:::\nalice:$y$x:19000:0:99999:7::\n", "s:2: 8 fields, want 9"},
		{":*:19000:0:99999:7:::\n", "s:1: empty user name"},
		{"alice:*:19000:0:99999:7::never:\n", `s:1: user alice: expiry "never" is not a number of days`},
		{"alice:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n", "s:2: user alice listed again"},
	}
	for _, c := range shadow {
		_, err := ParseShadow(strings.NewReader(c.in), "s")
		var le *LineError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &le) {
			t.Errorf("ParseShadow(%q) = %v, want a LineError with %q", c.in, err, c.want)
		}
	}
	// The size limit (MaxFileSize for the exported parsers) at a small scale.
	noop := func(string, int) error { return nil }
	if err := readLines(strings.NewReader(strings.Repeat("x", 101)), "big", 100, noop); err == nil || !strings.Contains(err.Error(), "big: larger than 100 bytes") {
		t.Errorf("oversized file: %v", err)
	}
	if err := readLines(strings.NewReader(strings.Repeat("x", 100)), "ok", 100, noop); err != nil {
		t.Errorf("a file of exactly the limit: %v", err)
	}
}
