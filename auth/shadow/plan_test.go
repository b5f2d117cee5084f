package shadow

import (
	"strings"
	"testing"
	"time"
)

// Hashes made by mkpasswd (Debian whois) and libxcrypt, password "correct horse".
const (
	yescryptHash = "$y$j75$pE4qh5RGOS3sC2mZ06ZQv.$SBOEw/TE/MXJBzydUrI1PlMcUZ.ZmJg1Dv8blT5kJV/"
	sha512Hash   = "$6$5Ae7s6VThkGQsFjG$Sj0V.0THB6QY7pYpa3WYHd433Ui0F0KemloUMugNXoO/Aapc54OlH81p9OOLVb.fOdUh4XQ4covNcE88RtU27/"
	sha256Hash   = "$5$rounds=1000$53Coc07skoR2SktI$.XBx2sOGtIBiCQXFFf.JYJanQk96WAD6ObgV44xVZW7"
	md5Hash      = "$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8."
	bcryptHash   = "$2b$05$LrDVu8.vVxJyIintLx3gzOY2gO2smGL./5q5Z6jXQGJL693Ka6hly"
)

// TestPlan covers every outcome: each supported scheme imported under its
// Dovecot name, and every reason to skip.
func TestPlan(t *testing.T) {
	t.Parallel()
	passwd := `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000::/home/alice:/bin/bash
bob:x:1001:1001::/home/bob:/bin/false
carol:x:1002:1002::/home/carol:/bin/sh
dave:x:1003:1003::/home/dave:/bin/sh
erin:x:1004:1004::/home/erin:/bin/sh
frank:x:1005:1005::/home/frank:/bin/sh
grace:x:1006:1006::/home/grace:/bin/sh
heidi:x:1007:1007::/home/heidi:/bin/sh
ivan:x:1008:1008::/home/ivan:/bin/sh
judy:x:1009:1009::/home/judy:/bin/sh
mallory:x:1010:1010::/home/mallory:/bin/sh
niaj:x:1011:1011::/home/niaj:/bin/sh
olivia:x:1012:1012::/home/olivia:/bin/sh
peggy:x:1013:1013::/home/peggy:/bin/sh
Alice:x:1014:1014::/home/Alice:/bin/sh
old:` + md5Hash + `:1015:1015::/home/old:/bin/sh
sybil:x:1016:1016::/home/sybil:/bin/sh
trent:x:1017:1017::/home/trent:/bin/sh
victor:x:1018:1018::/home/victor:/bin/sh
bad/name:x:1019:1019::/:/bin/sh
+@nis::::::
`
	shadowText := "root:" + sha512Hash + ":19000:0:99999:7:::\n" +
		"daemon:*:19000:0:99999:7:::\n" +
		"nobody:" + sha512Hash + ":19000:0:99999:7:::\n" +
		"alice:" + yescryptHash + ":19000:0:99999:7:::\n" +
		"bob:" + sha512Hash + ":19000:0:99999:7:::\n" +
		"carol:" + sha256Hash + ":19000:0:99999:7:::\n" +
		"dave:" + md5Hash + ":19000:0:99999:7:::\n" +
		"erin:" + bcryptHash + ":19000:0:99999:7:::\n" +
		"frank:!" + yescryptHash + ":19000:0:99999:7:::\n" +
		"grace:!!:19000:0:99999:7:::\n" +
		"heidi:*:19000:0:99999:7:::\n" +
		"ivan::19000:0:99999:7:::\n" +
		"judy:abJnggxhB/yWI:19000:0:99999:7:::\n" +
		"mallory:$7$CU..../....saltsalt$hash:19000:0:99999:7:::\n" +
		"niaj:$y$j75$short$abc:19000:0:99999:7:::\n" +
		"olivia:" + yescryptHash + ":19000:0:99999:7::20000:\n" +
		"peggy:" + yescryptHash + ":19000:0:99999:7::30000:\n" +
		"Alice:" + yescryptHash + ":19000:0:99999:7:::\n" +
		"sybil:$gy$j75$x$y:19000:0:99999:7:::\n" +
		"trent:weird:19000:0:99999:7:::\n" +
		"bad/name:" + yescryptHash + ":19000:0:99999:7:::\n"
	pw, err := ParsePasswd(strings.NewReader(passwd), "passwd")
	if err != nil {
		t.Fatal(err)
	}
	sh, err := ParseShadow(strings.NewReader(shadowText), "shadow")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) // day 20794
	plan := Plan(pw, sh, Options{Domain: "example.com", MinUID: 1000, Now: now})
	want := map[string]string{ // account → stored prefix, or "skip: reason fragment"
		"root":     "skip: system account (uid 0 < min-uid 1000)",
		"daemon":   "skip: system account (uid 1 < min-uid 1000)",
		"nobody":   "skip: uid 65534 is nobody",
		"alice":    "{CRYPT}$y$",
		"bob":      "{SHA512-CRYPT}$6$",
		"carol":    "{SHA256-CRYPT}$5$",
		"dave":     "{MD5-CRYPT}$1$",
		"erin":     "{BLF-CRYPT}$2b$",
		"frank":    "skip: locked",
		"grace":    "skip: locked",
		"heidi":    "skip: no password login ('*')",
		"ivan":     "skip: no password (empty hash field)",
		"judy":     "skip: unsupported scheme DES crypt",
		"mallory":  "skip: unsupported scheme scrypt ($7$)",
		"niaj":     "skip: yescrypt hash not usable",
		"olivia":   "skip: account expired on 2024-10-04",
		"peggy":    "{CRYPT}$y$",
		"Alice":    "skip: same address as account alice",
		"old":      "{MD5-CRYPT}$1$",
		"sybil":    "skip: unsupported scheme gost-yescrypt",
		"trent":    "skip: unrecognised hash format",
		"victor":   "skip: no entry in the shadow file",
		"bad/name": "skip: name not usable as an address",
		"+@nis":    "skip: NIS compat entry",
	}
	if len(plan) != len(want) {
		t.Fatalf("%d decisions, want %d", len(plan), len(want))
	}
	for _, d := range plan {
		w, ok := want[d.Account]
		if !ok {
			t.Errorf("unexpected decision %+v", d)
			continue
		}
		if reason, skip := strings.CutPrefix(w, "skip: "); skip {
			if !strings.Contains(d.Skip, reason) || d.Stored != "" {
				t.Errorf("%s: skip %q stored %q, want skip mentioning %q", d.Account, d.Skip, d.Stored, reason)
			}
			continue
		}
		if d.Skip != "" || !strings.HasPrefix(d.Stored, w) || d.User != strings.ToLower(d.Account)+"@example.com" {
			t.Errorf("%s: %+v, want imported as %s…", d.Account, d, w)
		}
	}
	// --min-uid 0 lets root in (its hash is usable).
	plan = Plan(pw[:1], sh, Options{Domain: "example.com", MinUID: 0, Now: now})
	if plan[0].Skip != "" || plan[0].User != "root@example.com" {
		t.Errorf("min-uid 0: %+v", plan[0])
	}
}
