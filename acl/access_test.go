package acl

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

func TestParseRulesValid(t *testing.T) {
	tests := []struct {
		line     string
		tag      string
		key      string
		mapKey   string
		verdict  Verdict
		code     int
		enhanced string
		text     string
	}{
		{line: "192.168.0 RELAY", key: "192.168.0", mapKey: "192.168.0", verdict: VerdictRelay},
		{line: "10\tREJECT", key: "10", mapKey: "10", verdict: VerdictReject},
		{line: "1.2.3.4   OK", key: "1.2.3.4", mapKey: "1.2.3.4", verdict: VerdictOK},
		{line: "Connect:192.168.212 REJECT", tag: "Connect", key: "192.168.212", mapKey: "connect:192.168.212", verdict: VerdictReject},
		{line: "CONNECT:Spamford.COM reject", tag: "Connect", key: "spamford.com", mapKey: "connect:spamford.com", verdict: VerdictReject},
		{line: "spamford.com REJECT", key: "spamford.com", mapKey: "spamford.com", verdict: VerdictReject},
		{line: "ok.spamford.com OK", key: "ok.spamford.com", mapKey: "ok.spamford.com", verdict: VerdictOK},
		{line: "Connect:TLD REJECT", tag: "Connect", key: "tld", mapKey: "connect:tld", verdict: VerdictReject},
		{line: "Connect:IPv6:1:2:3:4:5:6:7 RELAY", tag: "Connect", key: "ipv6:1:2:3:4:5:6:7", mapKey: "connect:ipv6:1:2:3:4:5:6:7", verdict: VerdictRelay},
		{line: "Connect:IPv6:2002:c0a8:02c7 RELAY", tag: "Connect", key: "ipv6:2002:c0a8:2c7", mapKey: "connect:ipv6:2002:c0a8:2c7", verdict: VerdictRelay},
		{line: "IPv6:2002:c0a8:51d2::23f4 REJECT", key: "ipv6:2002:c0a8:51d2:0:0:0:0:23f4", mapKey: "ipv6:2002:c0a8:51d2:0:0:0:0:23f4", verdict: VerdictReject},
		{line: "IPv6:2002:C0A8 OK", key: "ipv6:2002:c0a8", mapKey: "ipv6:2002:c0a8", verdict: VerdictOK},
		{line: "From:spammer@aol.com REJECT", tag: "From", key: "spammer@aol.com", mapKey: "from:spammer@aol.com", verdict: VerdictReject},
		{line: "From:cyberspammer.com REJECT", tag: "From", key: "cyberspammer.com", mapKey: "from:cyberspammer.com", verdict: VerdictReject},
		{line: "To:friend.domain RELAY", tag: "To", key: "friend.domain", mapKey: "to:friend.domain", verdict: VerdictRelay},
		{line: "To:postmaster@ OK", tag: "To", key: "postmaster@", mapKey: "to:postmaster@", verdict: VerdictOK},
		{line: "Spam:abuse@ FRIEND", tag: "Spam", key: "abuse@", mapKey: "spam:abuse@", verdict: VerdictFriend},
		{line: "Spam:spammer.example hater", tag: "Spam", key: "spammer.example", mapKey: "spam:spammer.example", verdict: VerdictHater},
		{line: "sales@example.com DISCARD", key: "sales@example.com", mapKey: "sales@example.com", verdict: VerdictDiscard},
		{line: "Connect:dial.example SKIP", tag: "Connect", key: "dial.example", mapKey: "connect:dial.example", verdict: VerdictSkip},
		{line: `From:bad.example ERROR:"550 We don't accept mail from spammers"`, tag: "From", key: "bad.example", mapKey: "from:bad.example",
			verdict: VerdictError, code: 550, enhanced: "5.0.0", text: "We don't accept mail from spammers"},
		{line: `From:bad.example ERROR:5.7.1:"550 Go away"`, tag: "From", key: "bad.example", mapKey: "from:bad.example",
			verdict: VerdictError, code: 550, enhanced: "5.7.1", text: "Go away"},
		{line: `From:bad.example ERROR:"5.7.1:550 Go away"`, tag: "From", key: "bad.example", mapKey: "from:bad.example",
			verdict: VerdictError, code: 550, enhanced: "5.7.1", text: "Go away"},
		{line: `From:bad.example ERROR:550 Go away`, tag: "From", key: "bad.example", mapKey: "from:bad.example",
			verdict: VerdictError, code: 550, enhanced: "5.0.0", text: "Go away"},
		{line: `From:slow.example ERROR:4.3.2:451 Try later`, tag: "From", key: "slow.example", mapKey: "from:slow.example",
			verdict: VerdictError, code: 451, enhanced: "4.3.2", text: "Try later"},
		{line: `old.example "550 Old style"`, key: "old.example", mapKey: "old.example",
			verdict: VerdictError, code: 550, enhanced: "5.0.0", text: "Old style"},
		{line: `old.example 553 Bare old style`, key: "old.example", mapKey: "old.example",
			verdict: VerdictError, code: 553, enhanced: "5.0.0", text: "Bare old style"},
		{line: "GreetPause:192.168.1 5000", tag: "GreetPause", key: "192.168.1", mapKey: "greetpause:192.168.1", verdict: VerdictOpaque},
		{line: "Srv_Features:10.1 V", tag: "Srv_Features", key: "10.1", mapKey: "srv_features:10.1", verdict: VerdictOpaque},
		{line: "  mail_host.example   RELAY  \r", key: "mail_host.example", mapKey: "mail_host.example", verdict: VerdictRelay},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			rules, err := ParseRulesString("# comment\n\n" + tt.line + "\n")
			if err != nil {
				t.Fatalf("ParseRules: %v", err)
			}
			list := rules.List()
			if len(list) != 1 {
				t.Fatalf("got %d rules, want 1", len(list))
			}
			r := list[0]
			if r.Line != 3 || r.Tag != tt.tag || r.Key != tt.key || r.MapKey() != tt.mapKey || r.Verdict != tt.verdict ||
				r.Code != tt.code || r.Enhanced != tt.enhanced || r.Text != tt.text {
				t.Errorf("got line %d tag %q key %q mapkey %q verdict %v code %d %q %q",
					r.Line, r.Tag, r.Key, r.MapKey(), r.Verdict, r.Code, r.Enhanced, r.Text)
			}
		})
	}
}

func TestParseRulesInvalid(t *testing.T) {
	tests := []struct {
		text string
		line int
		want string
	}{
		{"192.168.0", 1, "has no value"},
		{"# ok\n192.168.0 RELAY\nexample.com", 3, "has no value"},
		{"192.168.0 RELAY # office", 1, "'#' starts a comment only"},
		{"192.168.0 PERMIT", 1, "unknown value"},
		{"192.168.0.1.5 OK", 1, "more than 4 octets"},
		{"192.168.300 OK", 1, "over 255"},
		{"192.168.01 OK", 1, "bad IPv4 octet"},
		{"192..1 OK", 1, "bad IPv4 octet"},
		{"IPv6:2002:zz OK", 1, "bad IPv6 group"},
		{"IPv6:1:2:3:4:5:6:7:8:9 OK", 1, "more than 8 groups"},
		{"IPv6:fe80::1%eth0 OK", 1, "bad IPv6 address"},
		{"IPv6: OK", 1, "empty IPv6 address"},
		{"Bogus:example.com OK", 1, "unknown tag"},
		{"Connect:alice@example.com RELAY", 1, "not e-mail addresses"},
		{"From:10.1.2.3 REJECT", 1, "not IP addresses"},
		{"Connect: RELAY", 1, "empty key"},
		{"spam..example REJECT", 1, "empty label"},
		{"exa$mple.com REJECT", 1, "bad character"},
		{"@example.com REJECT", 1, "empty local part"},
		{"a\"b@example.com REJECT", 1, "bad character"},
		{"Spam:abuse@ LOVER", 1, "FRIEND or HATER"},
		{"alice@example.com SKIP", 1, "SKIP applies only"},
		{"x.example ERROR:5.7.1:450 Mixed", 1, "differ in class"},
		{"x.example ERROR:250 Fine", 1, "not 4xx or 5xx"},
		{"x.example ERROR:599 Bad", 1, "not 4xx or 5xx"},
		{"x.example ERROR:55 Short", 1, "three-digit reply code"},
		{"x.example ERROR:5501 Long", 1, "three-digit reply code"},
		{`x.example ERROR:"550 Unbalanced`, 1, "unbalanced quotes"},
		{`x.example ERROR:550 mid"quote`, 1, "quote in the middle"},
		{"x.example QUARANTINE:held", 1, "QUARANTINE is not supported"},
		{"x.example RELAY\nX.EXAMPLE REJECT", 2, `duplicate key "X.EXAMPLE" (first on line 1)`},
		{"192.168.0 OK\n" + strings.Repeat("a", maxAccessLine+10) + " OK", 2, "longer than"},
		{"a.example OK\x00", 1, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := ParseRulesString(tt.text)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseRules(%q) = %v, want a *ParseError", tt.text, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.want) {
				t.Errorf("ParseRules(%q) = line %d %q, want line %d containing %q", tt.text, pe.Line, pe.Msg, tt.line, tt.want)
			}
			if !strings.Contains(err.Error(), "access: line ") {
				t.Errorf("error %q does not name the line", err)
			}
		})
	}
}

// The HOWTO's example, plus specificity and tag cases.
const howtoAccess = `# /etc/mail/access from the SMTP-after-POP HOWTO
192.168.0		RELAY
spamford.com		REJECT
ok.spamford.com		OK
Connect:10.1		REJECT
10.1.2			RELAY
Connect:10.1.2.3	OK
skip.spamford.com	SKIP
IPv6:2002:c0a8		RELAY
Connect:IPv6:2002:c0a8:51d2:0:0:0:0:23f4	REJECT
`

func TestLookupPrecedence(t *testing.T) {
	rules, err := ParseRulesString(howtoAccess)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	ipTests := []struct {
		ip   string
		want string // RawKey of the rule found, "" for none
	}{
		{"192.168.0.7", "192.168.0"},
		{"192.168.1.7", ""},
		{"::ffff:192.168.0.9", "192.168.0"},
		{"10.1.9.9", "Connect:10.1"},
		{"10.1.2.9", "10.1.2"},           // more specific untagged beats less specific tagged
		{"10.1.2.3", "Connect:10.1.2.3"}, // exact
		{"2002:c0a8::1", "IPv6:2002:c0a8"},
		{"2002:c0a8:51d2::23f4", "Connect:IPv6:2002:c0a8:51d2:0:0:0:0:23f4"},
		{"2002:c0a9::1", ""},
	}
	for _, tt := range ipTests {
		r, ok := rules.LookupAddr("Connect", addr(tt.ip))
		if got := map[bool]string{true: r.RawKey}[ok]; got != tt.want {
			t.Errorf("LookupAddr(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	domainTests := []struct {
		domain string
		want   string
	}{
		{"spamford.com", "spamford.com"},
		{"mail.spamford.com", "spamford.com"},
		{"ok.spamford.com", "ok.spamford.com"},
		{"a.b.ok.spamford.com", "ok.spamford.com"},
		{"notspamford.com", ""},
		{"skip.spamford.com", ""}, // SKIP stops the search before spamford.com
		{"x.skip.spamford.com", ""},
		{"example.org", ""},
	}
	for _, tt := range domainTests {
		r, ok := rules.LookupDomain("Connect", tt.domain)
		if got := map[bool]string{true: r.RawKey}[ok]; got != tt.want {
			t.Errorf("LookupDomain(%s) = %q, want %q", tt.domain, got, tt.want)
		}
	}
	// A tagged key is not seen by another tag's lookup.
	if _, ok := rules.LookupAddr("From", addr("10.1.9.9")); ok {
		t.Error("Connect:10.1 matched a From lookup")
	}
	var nilRules *Rules
	if _, ok := nilRules.LookupDomain("Connect", "spamford.com"); ok || nilRules.Len() != 0 || nilRules.List() != nil {
		t.Error("nil Rules found something")
	}
}

func TestIPv6FullForm(t *testing.T) {
	tests := map[string]string{
		"::1":                  "0:0:0:0:0:0:0:1",
		"2002:c0a8:51d2::23f4": "2002:c0a8:51d2:0:0:0:0:23f4",
		"2001:db8:0:0:1:0:0:1": "2001:db8:0:0:1:0:0:1",
		"fe80::abcd:1":         "fe80:0:0:0:0:0:abcd:1",
	}
	for in, want := range tests {
		if got := fullIPv6(netip.MustParseAddr(in)); got != want {
			t.Errorf("fullIPv6(%s) = %s, want %s", in, got, want)
		}
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add(howtoAccess)
	f.Add("From:a@b.c ERROR:5.7.1:\"550 no\"\nTo:x@ OK\nSpam:abuse@ FRIEND\n")
	f.Add("IPv6:2002:c0a8:51d2::23f4 REJECT\nGreetPause:1.2 500\n")
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseRulesString(text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		// Every parsed rule round-trips through its own rendering and is
		// found again under its map key.
		for _, r := range rules.List() {
			again, err := ParseRulesString(r.MapKey() + " " + r.Value)
			if err != nil {
				t.Fatalf("rule %q (map key %q) does not reparse: %v", r, r.MapKey(), err)
			}
			if got := again.List()[0]; got.MapKey() != r.MapKey() || got.Verdict != r.Verdict {
				t.Fatalf("rule %q reparsed as %q %v", r, got.MapKey(), got.Verdict)
			}
			if r.MapKey() != strings.ToLower(r.MapKey()) {
				t.Fatalf("map key %q not lowercase", r.MapKey())
			}
		}
		for _, e := range Entries(rules, nil, FlavorPostfix) {
			if e.Key == "" || e.Value == "" {
				t.Fatalf("empty postfix entry %+v", e)
			}
		}
	})
}

func TestLoadRules(t *testing.T) {
	fs := afero.NewMemMapFs()
	if err := afero.WriteFile(fs, "/etc/mail/access", []byte("192.168.0 RELAY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fs, "/etc/mail/bad", []byte("ok RELAY\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules(fs, "/etc/mail/access")
	if err != nil || rules.Len() != 1 {
		t.Fatalf("LoadRules = %v, %v", rules, err)
	}
	_, err = LoadRules(fs, "/etc/mail/bad")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.HasPrefix(err.Error(), "/etc/mail/bad: access: line 2:") {
		t.Errorf("LoadRules(bad) = %v", err)
	}
	if _, err := LoadRules(fs, "/etc/mail/missing"); err == nil {
		t.Error("missing file accepted")
	}
}
