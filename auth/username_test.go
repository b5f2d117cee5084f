package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateUsername(t *testing.T) {
	t.Parallel()
	good := []string{
		"alice@example.com", "a@b", "first.last+tag@mail.example.co.uk", "Alice@Example.COM",
		"jörg@bücher.de", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 189),
	}
	for _, name := range good {
		if err := ValidateUsername(name); err != nil {
			t.Errorf("ValidateUsername(%q) = %v, want nil", name, err)
		}
	}
	bad := []struct{ name, want string }{
		{"", "empty"},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190), "longer than 254"},
		{"al\xffice@example.com", "UTF-8"},
		{"al\x00ice@example.com", "NUL"},
		{"al\tice@example.com", "control character U+0009"},
		{"al\x7fice@example.com", "control character U+007F"},
		{"alice@example.com\n", "control character U+000A"},
		{"al ice@example.com", "white space"},
		{"alice@example.com\u00a0", "white space"},
		{"alice:x@example.com", "':'"},
		{"al/ice@example.com", "path separator"},
		{`al\ice@example.com`, "path separator"},
		{"al..ice@example.com", `".."`},
		{"alice@example..com", `".."`},
		{"alice", "no '@'"},
		{"alice@b@example.com", "more than one '@'"},
		{"@example.com", "empty local part"},
		{"alice@", "empty domain"},
		{".alice@example.com", "local part starts or ends with '.'"},
		{"alice.@example.com", "local part starts or ends with '.'"},
		{"alice@.example.com", "domain starts or ends with '.'"},
		{"alice@example.com.", "domain starts or ends with '.'"},
		{".@example.com", "local part starts or ends"},
	}
	for _, c := range bad {
		err := ValidateUsername(c.name)
		if err == nil {
			t.Errorf("ValidateUsername(%q) accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateUsername(%q) = %q, want it to say %q", c.name, err, c.want)
		}
	}
}

func FuzzValidateUsername(f *testing.F) {
	for _, s := range []string{"alice@example.com", "a@b", "../x@y", "a:b@c", "a@b@c", "\x00", "A@B.C", "a..b@c", "İ@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateUsername(name) != nil {
			return
		}
		// What it accepts is safe for the users file and for paths.
		if !utf8.ValidString(name) || len(name) > MaxUsernameLen || strings.ContainsAny(name, ":/\\\x00\n\r \t") ||
			strings.Contains(name, "..") || strings.Count(name, "@") != 1 {
			t.Fatalf("accepted %q", name)
		}
		local, domain, _ := strings.Cut(name, "@")
		for _, part := range []string{local, domain} {
			if part == "" || part == "." || strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".") {
				t.Fatalf("accepted %q with part %q", name, part)
			}
		}
	})
}
