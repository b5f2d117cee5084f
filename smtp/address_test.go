package smtp

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAddress(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want string
		lit  bool
	}{
		{"alice@example.com", "alice@example.com", false},
		{"<alice@example.com>", "alice@example.com", false},
		{"Alice@EXAMPLE.Com", "Alice@example.com", false}, // local part case kept
		{"alice@example.com.", "alice@example.com", false},
		{"a.b+tag@sub.example.com", "a.b+tag@sub.example.com", false},
		{"o'brien@example.com", "o'brien@example.com", false},
		{"x@localhost", "x@localhost", false},
		{"@hop.example:alice@example.com", "alice@example.com", false},
		{"<@a.example,@b.example:alice@example.com>", "alice@example.com", false},
		{"alice@bücher.example", "alice@xn--bcher-kva.example", false},
		{"alice@BÜCHER.EXAMPLE.", "alice@xn--bcher-kva.example", false},
		{"alice@XN--BCHER-KVA.example", "alice@xn--bcher-kva.example", false},
		{"alice@example\u3002com", "alice@example.com", false}, // ideographic full stop
		{"用户@例子.测试", "用户@xn--fsqu00a.xn--0zwm56d", false},
		{"u@[192.0.2.1]", "u@[192.0.2.1]", true},
		{"u@[IPv6:2001:DB8::1]", "u@[IPv6:2001:db8::1]", true},
		{"u@[ipv6:::1]", "u@[IPv6:::1]", true},
		{strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64) + "@example.com", false},
	}
	for _, tc := range valid {
		a, err := ParseAddress(tc.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tc.in, err)
			continue
		}
		if a.String() != tc.want || a.Literal != tc.lit {
			t.Errorf("ParseAddress(%q) = %q literal=%v, want %q literal=%v", tc.in, a, a.Literal, tc.want, tc.lit)
		}
	}

	invalid := []struct {
		in   string
		want error
	}{
		{"", ErrAddressSyntax},
		{"alice", ErrAddressSyntax},
		{"alice@", ErrAddressSyntax},
		{"@example.com", ErrAddressSyntax},
		{"@hop:", ErrAddressSyntax},
		{"@:alice@example.com", ErrAddressSyntax},
		{"user%remote.example@example.com", ErrRoutingSyntax},
		{"remote.example!user@example.com", ErrRoutingSyntax},
		{"user@remote.example@example.com", ErrRoutingSyntax}, // "\"user@remote.example\"@example.com" unquoted
		{"a b@example.com", ErrQuotedLocalPart},
		{"a\"b@example.com", ErrQuotedLocalPart},
		{".alice@example.com", ErrQuotedLocalPart},
		{"alice.@example.com", ErrQuotedLocalPart},
		{"al..ice@example.com", ErrQuotedLocalPart},
		{"a\x00b@example.com", ErrQuotedLocalPart},
		{"a\xffb@example.com", ErrAddressSyntax},
		{strings.Repeat("l", 65) + "@example.com", ErrAddressTooLong},
		{"a@" + strings.Repeat("d", 64) + ".com", ErrAddressSyntax},
		{"a@" + strings.Repeat("abcdefgh.", 30) + "com", ErrAddressTooLong},
		{"a@example..com", ErrAddressSyntax},
		{"a@.example.com", ErrAddressSyntax},
		{"a@example.com..", ErrAddressSyntax},
		{"a@-example.com", ErrAddressSyntax},
		{"a@exa_mple.com", ErrAddressSyntax},
		{"a@exa mple.com", ErrAddressSyntax},
		{"a@127.0.0.1", ErrAddressSyntax},
		{"a@example.123", ErrAddressSyntax},
		{"a@xn--zz.example", ErrAddressSyntax},
		{"a@[300.1.1.1]", ErrAddressSyntax},
		{"a@[::1]", ErrAddressSyntax},
		{"a@[IPv6:1.2.3.4]", ErrAddressSyntax},
		{"a@[IPv6:fe80::1%eth0]", ErrAddressSyntax},
		{"a@[192.0.2.1", ErrAddressSyntax},
		{"a@[tag:content]", ErrAddressSyntax},
	}
	for _, tc := range invalid {
		a, err := ParseAddress(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseAddress(%q) = %q, %v; want %v", tc.in, a, err, tc.want)
		}
	}
}

func TestNormalizeDomainLocalForms(t *testing.T) {
	t.Parallel()
	forms := []string{"bücher.example", "BÜCHER.example.", "xn--bcher-kva.example", "XN--BCHER-KVA.EXAMPLE."}
	for _, f := range forms {
		d, err := NormalizeDomain(f)
		if err != nil || d != "xn--bcher-kva.example" {
			t.Errorf("NormalizeDomain(%q) = %q, %v", f, d, err)
		}
	}
}

// FuzzParseAddress: never panics; an accepted address is normalised
// (idempotent, ASCII lowercase domain, no routing characters, bounded).
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "<@a,@b:c@d>", "user%remote@local", "\"a@b\"@c", "a@[1.2.3.4]",
		"a@[IPv6:::1]", "a@bücher.example", "a@xn--bcher-kva.example.", "h!u@l", "a@b@c", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(a.Local, "@%!\"\\ \r\n\x00") || a.Local == "" || len(a.Local) > maxLocalPartOctets {
			t.Fatalf("bad local part %q from %q", a.Local, s)
		}
		if !utf8.ValidString(a.Local) {
			t.Fatalf("invalid UTF-8 local part from %q", s)
		}
		if a.Domain != strings.ToLower(a.Domain) && !a.Literal || !isASCII(a.Domain) || strings.HasSuffix(a.Domain, ".") {
			t.Fatalf("domain not normalised: %q from %q", a.Domain, s)
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, a, b, err)
		}
	})
}

func BenchmarkParseAddress(b *testing.B) {
	inputs := []string{"alice@example.com", "Some.User+tag@Mail.Example.ORG.", "alice@bücher.example", "u@[192.0.2.1]", "user%remote@example.com"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = ParseAddress(inputs[i%len(inputs)])
	}
}
