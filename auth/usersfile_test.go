package auth

import (
	"errors"
	"strings"
	"testing"
)

const (
	vecSHA512 = "{SHA512-CRYPT}$6$E.8s.ihbzA0nN9X.$J2Rtir4FIIgLNpV/jWpbg.yY3yDEQit09XAkANVFkIoICDnkQ1S57q3mz.z4aUzEafIUIWiEQ006aZ5I.izmg." // "correct horse", doveadm
	vecBare5  = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"                                                                // "Hello world!"
)

func TestParseUsersValid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		file  string
		users map[string]int // canonical name → line
		plain []int
	}{
		{"empty", "", map[string]int{}, nil},
		{"comments and blanks", "# users\n\n   \n\t# indented comment\n", map[string]int{}, nil},
		{"one plain", "alice@example.com:{PLAIN}secret\n", map[string]int{"alice@example.com": 1}, []int{1}},
		{"no final newline", "alice@example.com:{PLAIN}secret", map[string]int{"alice@example.com": 1}, []int{1}},
		{"CRLF", "# x\r\nalice@example.com:{PLAIN}secret\r\n", map[string]int{"alice@example.com": 2}, []int{2}},
		{"extra dovecot fields", "bob@example.com:" + vecBare5 + ":1000:1000::/home/bob::userdb_quota_rule=*:storage=1G\n",
			map[string]int{"bob@example.com": 1}, nil},
		{"empty extra fields", "bob@example.com:{PLAIN}x::::::\n", map[string]int{"bob@example.com": 1}, []int{1}},
		{"lowercased", "# c\nAlice@Example.COM:{plain}Secret\n", map[string]int{"alice@example.com": 2}, []int{2}},
		{"several", "a@x.org:{PLAIN}1\n\nb@x.org:" + vecSHA512 + "\nc@y.org:" + vecBare5 + "\n",
			map[string]int{"a@x.org": 1, "b@x.org": 3, "c@y.org": 4}, []int{1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := parseUsers([]byte(c.file))
			if err != nil {
				t.Fatalf("parseUsers: %v", err)
			}
			if len(tab.users) != len(c.users) {
				t.Fatalf("got %d users, want %d", len(tab.users), len(c.users))
			}
			for name, line := range c.users {
				e := tab.users[name]
				if e == nil || e.line != line {
					t.Errorf("user %s: got %+v, want line %d", name, e, line)
				}
			}
			if len(tab.plainLines) != len(c.plain) {
				t.Errorf("plain lines %v, want %v", tab.plainLines, c.plain)
			}
		})
	}
}

func TestParseUsersPasswordsAndCase(t *testing.T) {
	t.Parallel()
	tab, err := parseUsers([]byte("Alice@Example.COM:{PLAIN}Secret:1000\nbob@example.com:" + vecBare5 + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := tab.users["alice@example.com"]
	if !a.v.verify("Secret") || a.v.verify("secret") {
		t.Error("{PLAIN} password must be exact; extra fields must not be part of it")
	}
	if !tab.users["bob@example.com"].v.verify("Hello world!") {
		t.Error("bare $5$ hash not treated as {CRYPT}")
	}
}

func TestParseUsersErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file string
		line       int
		want       string
	}{
		{"no colon", "# c\nalice@example.com\n", 2, "no ':'"},
		{"empty password", "alice@example.com:\n", 1, "no {SCHEME}"},
		{"empty plain", "alice@example.com:{PLAIN}:1000\n", 1, "empty {PLAIN}"},
		{"unknown scheme", "\n\nalice@example.com:{NTLM}abc\n", 3, "unknown password scheme {NTLM}"},
		{"no scheme", "alice@example.com:secret\n", 1, "no {SCHEME} prefix"},
		{"bad hash", "a@x.org:{PLAIN}1\nalice@example.com:{SHA512-CRYPT}$6$x$y\n", 2, "malformed SHA-crypt"},
		{"duplicate", "alice@example.com:{PLAIN}a\n# c\nbob@example.com:{PLAIN}b\nalice@example.com:{PLAIN}c\n", 4, "listed again (first on line 1)"},
		{"duplicate by case", "alice@example.com:{PLAIN}a\nALICE@example.com:{PLAIN}c\n", 2, "first on line 1"},
		{"no domain", "alice:{PLAIN}a\n", 1, "no '@'"},
		{"space in name", "al ice@example.com:{PLAIN}a\n", 1, "white space"},
		{"leading space", " alice@example.com:{PLAIN}a\n", 1, "white space"},
		{"path", "../x@example.com:{PLAIN}a\n", 1, "path separator"},
		{"empty name", ":{PLAIN}a\n", 1, "empty"},
		{"NUL", "al\x00ice@example.com:{PLAIN}a\n", 1, "NUL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseUsers([]byte(c.file))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LineError", err)
			}
			if le.Line != c.line {
				t.Errorf("line %d, want %d (%v)", le.Line, c.line, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not start with its line", err)
			}
		})
	}
}

func TestParseUsersErrorHidesPassword(t *testing.T) {
	t.Parallel()
	_, err := parseUsers([]byte("alice@example.com:{NOPE}hunter2\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v must exist and not echo the password", err)
	}
}

func FuzzParseUsers(f *testing.F) {
	f.Add([]byte("alice@example.com:{PLAIN}secret\n# c\n\nbob@example.com:" + vecBare5 + ":1000:1000::/home::\n"))
	f.Add([]byte("a@b:{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA\n"))
	f.Add([]byte("a@b:{SSHA512}" + strings.Repeat("A", 100) + "\n"))
	f.Add([]byte("a@b:{BLF-CRYPT}$2y$05$qe2OY6ARoXEK1WE12kIS6OTXiP2RV0HYDOoVdYs/e4nTganCgs8Bm\r\n"))
	f.Add([]byte("a@b:{CRYPT}$6$rounds=1000$s$x\na@b:{PLAIN}y"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parseUsers(data)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for name, e := range tab.users {
			if err := ValidateUsername(name); err != nil {
				t.Fatalf("accepted bad name %q: %v", name, err)
			}
			if name != CanonicalUsername(name) {
				t.Fatalf("name %q not canonical", name)
			}
			if e.line < 1 {
				t.Fatalf("line %d", e.line)
			}
		}
	})
}
