package maildir

import (
	"slices"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	long := strings.Repeat("a", 71)
	tests := []struct {
		name  string
		base  string
		flags string
		uid   string // "" means: hashed
		ts    int64
		wsize int64
	}{
		{"1732000000.V801I1234M567.host", "1732000000.V801I1234M567.host", "", "1732000000.V801I1234M567.host", 1732000000, -1},
		{"1732000000.V801I1234M567.host:2,S", "1732000000.V801I1234M567.host", "S", "1732000000.V801I1234M567.host", 1732000000, -1},
		{"1732000000.M5P9Q1.mx,S=10,W=12", "1732000000.M5P9Q1.mx,S=10,W=12", "", "1732000000.M5P9Q1.mx,S=10,W=12", 1732000000, 12},
		{"1732000000.M5P9Q1.mx,S=10,W=12:2,FRS", "1732000000.M5P9Q1.mx,S=10,W=12", "FRS", "1732000000.M5P9Q1.mx,S=10,W=12", 1732000000, 12},
		{"1732000000.M5P9Q1.mx,W=7,S=5", "1732000000.M5P9Q1.mx,W=7,S=5", "", "1732000000.M5P9Q1.mx,W=7,S=5", 1732000000, 7},
		{"1732000000.x,S=10", "1732000000.x,S=10", "", "1732000000.x,S=10", 1732000000, -1},
		{"1732000000.x,W=", "1732000000.x,W=", "", "1732000000.x,W=", 1732000000, -1},
		{"1732000000.x,W=-5", "1732000000.x,W=-5", "", "1732000000.x,W=-5", 1732000000, -1},
		{"1732000000.x,W=1e3", "1732000000.x,W=1e3", "", "1732000000.x,W=1e3", 1732000000, -1},
		{"1732000000.x,W=99999999999999999999", "1732000000.x,W=99999999999999999999", "", "1732000000.x,W=99999999999999999999", 1732000000, -1},
		{"x,W=12", "x,W=12", "", "x,W=12", -1, 12},
		{"noTimestamp", "noTimestamp", "", "noTimestamp", -1, -1},
		{"12ab.host", "12ab.host", "", "12ab.host", -1, -1},
		{".hidden", ".hidden", "", ".hidden", -1, -1},
		{"with space", "with space", "", "", -1, -1},
		{"tab\there", "tab\there", "", "", -1, -1},
		{"caf\xc3\xa9", "caf\xc3\xa9", "", "", -1, -1},
		{long, long, "", "", -1, -1},
		{long[:70], long[:70], "", long[:70], -1, -1},
		{":2,S", "", "S", "", -1, -1},
		{"a:1,x", "a:1,x", "", "a:1,x", -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := parseName(tt.name)
			if ni.base != tt.base || ni.flags != tt.flags || ni.ts != tt.ts || ni.wsize != tt.wsize {
				t.Errorf("parseName(%q) = base %q flags %q ts %d wsize %d; want %q %q %d %d",
					tt.name, ni.base, ni.flags, ni.ts, ni.wsize, tt.base, tt.flags, tt.ts, tt.wsize)
			}
			want := tt.uid
			if want == "" {
				want = uidFor(tt.base)
				if !strings.HasPrefix(want, hashedUIDPrefix) || len(want) != 65 {
					t.Errorf("hashed uid %q: want H + 64 hex digits", want)
				}
			}
			if ni.uid != want {
				t.Errorf("uid = %q, want %q", ni.uid, want)
			}
			if !validUID(ni.uid) {
				t.Errorf("uid %q is not a valid POP3 unique-id", ni.uid)
			}
		})
	}
}

func TestValidUID(t *testing.T) {
	for _, s := range []string{"a", "!", "~", strings.Repeat("x", 70), "1732000000.M1P2Q3.h,S=1,W=2"} {
		if !validUID(s) {
			t.Errorf("validUID(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", " ", "a b", "\x7f", "a\x00", strings.Repeat("x", 71), "\xc3\xa9"} {
		if validUID(s) {
			t.Errorf("validUID(%q) = true, want false", s)
		}
	}
}

func TestCompareNamesOrder(t *testing.T) {
	// In delivery order; a name without a timestamp sorts first (ts -1).
	want := []string{
		"noTimestamp",
		"999999999.A.h",
		"1732000000.M9P1Q1.h",
		"1732000000.M10P1Q1.h",
		"1732000000.M10P1Q2.h",
		"1732000000.M10P1Q10.h",
		"1732000000.V801I1234M567.host",
		"1732000001.A",
		"1732000001.A:2,S", // same base: equal here, broken by sub/name in List
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortStableFunc(got, func(a, b string) int {
		na, nb := parseName(a), parseName(b)
		return compareNames(&na, &nb)
	})
	// The two names with the same base compare equal; a stable sort of the
	// reversed list swaps them, so compare bases only.
	for i := range want {
		if parseName(got[i]).base != parseName(want[i]).base {
			t.Fatalf("order:\n got %q\nwant %q", got, want)
		}
	}
}

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"M9", "M10", -1},
		{"M10", "M9", 1},
		{"M010", "M10", 0},
		{"Q2x", "Q2y", -1},
		{"a1b2", "a1b10", -1},
		{"abc", "abd", -1},
		{"1", "a", -1},
	}
	for _, tt := range tests {
		if got := naturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSanitizeHostname(t *testing.T) {
	tests := map[string]string{
		"mail.example.com":                "mail.example.com",
		"a/b:c,d":                         "a_b_c_d",
		"":                                "localhost",
		"very-long-host-name.example.org": "very-long-host-name.",
	}
	for in, want := range tests {
		if got := sanitizeHostname(in); got != want {
			t.Errorf("sanitizeHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddSeenFlag(t *testing.T) {
	tests := map[string]string{"": "S", "S": "S", "F": "FS", "RT": "RST", "FRT": "FRST", "a": "Sa", "T": "ST"}
	for in, want := range tests {
		if got := addSeenFlag(in); got != want {
			t.Errorf("addSeenFlag(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseName checks that any file name yields a valid, stable POP3
// unique-id that does not change when the message is marked seen, and that
// sizes and timestamps are never negative garbage.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"1732000000.V801I1234M567.host",
		"1732000000.M5P9Q1.mx,S=10,W=12:2,S",
		"x,W=12", "x,W=-1", ":2,", "a:2,b:2,c", "\x00", "with space",
		"1732000000.I3P9Q1.mx,U=0123456789abcdef0123456789abcdef,S=10,W=12:2,S", "x,X=2f3a2c25", "x,X=zz", "x,U=",
		strings.Repeat("z", 80),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ni := parseName(name)
		if !validUID(ni.uid) {
			t.Fatalf("uid %q of %q is invalid", ni.uid, name)
		}
		if ni.uid != parseName(name).uid {
			t.Fatal("uid not deterministic")
		}
		if ni.wsize < -1 || ni.ts < -1 {
			t.Fatalf("wsize %d ts %d", ni.wsize, ni.ts)
		}
		if !strings.Contains(ni.base, infoSep) {
			seen := parseName(ni.base + infoSep + addSeenFlag(ni.flags))
			if seen.uid != ni.uid || seen.wsize != ni.wsize || seen.ts != ni.ts {
				t.Fatalf("marking %q seen changed uid/size/ts", name)
			}
		}
		if c := compareNames(&ni, &ni); c != 0 {
			t.Fatalf("compareNames(x, x) = %d", c)
		}
	})
}
