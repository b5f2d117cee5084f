package auth

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestSchemeVectors checks every hash in testdata/vectors.tsv, made by
// doveadm, mkpasswd and openssl (see testdata/README.md), with the right
// and a wrong password.
func TestSchemeVectors(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 {
			t.Fatalf("vectors.tsv line %d: %d fields", n, len(fields))
		}
		tool, pw, stored := fields[0], fields[1], fields[2]
		v, err := parseHash(stored)
		if err != nil {
			t.Errorf("%s %q: parse: %v", tool, stored, err)
			continue
		}
		seen[v.scheme()] = true
		if !v.verify(pw) {
			t.Errorf("%s %q: right password %q rejected", tool, stored, pw)
		}
		// One wrong password each: Argon2 under -race is slow enough.
		if wrong := pw[:len(pw)-1] + "X"; v.verify(wrong) {
			t.Errorf("%s %q: wrong password %q accepted", tool, stored, wrong)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{SchemeArgon2ID, SchemeArgon2I, SchemeBlfCrypt, SchemeSHA512Crypt,
		SchemeSHA256Crypt, SchemeMD5Crypt, SchemeCrypt, SchemeSSHA512, SchemeSHA512} {
		if !seen[s] {
			t.Errorf("no vector for scheme %s", s)
		}
	}
}

func TestPlainAndHexSchemes(t *testing.T) {
	t.Parallel()
	cases := []struct{ stored, right, wrong string }{
		{"{PLAIN}secret", "secret", "secreT"},
		{"{plain}secret", "secret", "secret "},
		{"{CLEAR}pässwörd", "pässwörd", "passwort"},
		// `doveadm pw -s SHA512.HEX -p x` and `doveadm pw -s SSHA512.HEX -p x`
		{"{SHA512.HEX}a4abd4448c49562d828115d13a1fccea927f52b4d5459297f8b43e42da89238bc13626e43dcb38ddb082488927ec904fb42057443983e88585179d50551afe62", "x", "y"},
		{"{SSHA512.HEX}543ba78697ace2e925e0dad3c55936613c21a588024016b017b69ecbabdd8bfa1f2d55f5f1449ec9953864df38a9e8d3ab6d9a75754210fdeb6d3dd32b6bdc1bf6bca71f", "x", "y"},
		// The same digest in hex under plain {SHA512}, which Dovecot also accepts.
		{"{SHA512}a4abd4448c49562d828115d13a1fccea927f52b4d5459297f8b43e42da89238bc13626e43dcb38ddb082488927ec904fb42057443983e88585179d50551afe62", "x", "y"},
	}
	for _, c := range cases {
		v, err := parseHash(c.stored)
		if err != nil {
			t.Fatalf("%s: %v", c.stored, err)
		}
		if !v.verify(c.right) || v.verify(c.wrong) {
			t.Errorf("%s: right/wrong password not told apart", c.stored)
		}
	}
}

func TestParseHashRejects(t *testing.T) {
	t.Parallel()
	cases := []struct{ stored, wantErr string }{
		{"", "no {SCHEME}"},
		{"secret", "no {SCHEME}"},
		{"{PLAIN", "no closing"},
		{"{PLAIN}", "empty {PLAIN}"},
		{"{MD5}abc", "unknown password scheme {MD5}"},
		{"{SHA512-CRYPT}$5$abc$def", "wants a $6$"},
		{"{SHA256-CRYPT}$6$abc$def", "wants a $5$"},
		{"{SHA512-CRYPT}$6$abc$def", "malformed SHA-crypt"},
		{"{CRYPT}$1$abc$def", "malformed MD5-crypt"},
		{"{MD5-CRYPT}$6$abc$def", "want $1$"},
		{"{MD5-CRYPT}$1$abcdefghi$MG6yVn2o9McxPtowv9Ju8.", "salt longer than 8"},
		{"{MD5-CRYPT}$1$abc$MG6yVn2o9McxPtowv9Ju8!", "outside the crypt alphabet"},
		{"{MD5-CRYPT}$1$abc", "missing $"},
		{"{CRYPT}$7$CU..../....abc$def", "unsupported crypt(3)"},
		{"{CRYPT}$y$j9T$abc", "missing $ before the hash"},
		{"{CRYPT}$y$j9T$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5", "hash is 8 characters"},
		{"{CRYPT}$y$jAT$", "missing $ before the hash"},
		{"{CRYPT}$y$j9T$bxke!Nm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "outside the crypt alphabet"},
		{"{CRYPT}$y$j9T$bxkeuNm/9sQ/eerGGQD8rz$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "stray bits"},
		{"{CRYPT}$y$j9T$bxkeuNm/9sQ/eerGGQD8r$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "lone character"},
		{"{CRYPT}$y$zzzzzzz$s$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "unknown flavor"},
		{"{CRYPT}$y$i9T$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "unsupported pwxform flavor"},
		{"{CRYPT}$y$jGT$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "needs more than 1024 MiB"},
		{"{CRYPT}$y$jP5$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "needs more than 1024 MiB"},
		{"{CRYPT}$y$j9T1.$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "hash upgrades"},
		{"{CRYPT}$y$j9T3.$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "hash upgrades"},
		{"{CRYPT}$y$j9T.kE$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "p=66 above"},
		{"{CRYPT}$y$.9T/.$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.4", "takes no t"},
		{"{CRYPT}$y$j9T$bxkeuNm/9sQ/eerGGQD8r0$e5Vqtov5.qefjEDflOWgySrR2oXx544vXeKUKp.E3.z", "not 32 bytes"},
		{"{CRYPT}$y$j9", "parameters end early"},
		{"{CRYPT}$y$j9T", "no $ after the parameters"},
		{"{CRYPT}abcdefghijklm", "unsupported crypt(3)"},
		{"abcdefghijklm", "no {SCHEME}"},
		{"$gy$j9T$abc$def", "unsupported crypt(3)"},
		{"{CRYPT}$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "m=1 outside"},
		{"{BLF-CRYPT}$6$abc", "wants a $2y$"},
		{"{BLF-CRYPT}$2y$05$short", "malformed bcrypt"},
		{"{BLF-CRYPT}$2y$99$qe2OY6ARoXEK1WE12kIS6OTXiP2RV0HYDOoVdYs/e4nTganCgs8Bm", "malformed bcrypt"},
		{"{ARGON2ID}$argon2i$v=19$m=32768,t=4,p=1$VOgYgsSU0JnqRwUOLgsVdQ$bnP1mZ9dlXBsKSWKBODuk6loTkRhFbXqq8ucVgNSIVc", "holds a $argon2i$"},
		{"{ARGON2ID}$argon2id$v=16$m=65536,t=3,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "unsupported version"},
		{"{ARGON2ID}$argon2id$m=65536,t=3,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "want $argon2id$v=19"},
		{"{ARGON2ID}$argon2id$v=19$t=3,m=65536,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "want m=N,t=N,p=N"},
		{"{ARGON2ID}$argon2id$v=19$m=65536,t=0,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "t=0 outside"},
		{"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=0$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "p=0 outside"},
		{"{ARGON2ID}$argon2id$v=19$m=99999999,t=3,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "m=99999999 outside"},
		{"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$Rwry$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "salt is 3 bytes"},
		{"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKt", "hash is 3 bytes"},
		{"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$Rwryk!uYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "salt: illegal base64"},
		{"{ARGON2ID}$argon2id$v=19$m=x,t=3,p=1$RwrykGuYuFwSGdF5DGu0Dw$xGKtIJnk0LsAUnK+u1rCiuPie5xkWYxoORj9oK2qBME", "not a number"},
		{"{SHA512}abc", "bad encoding"},
		{"{SHA512.HEX}zz", "bad encoding"},
		{"{SHA512}YWJj", "digest is 3 bytes"},
		{"{SSHA512}VraY3v7bWkNbY0r+MyC7rz/c2SC2xQOkRvx7endrKY1HnRumqLYXgI6wv1ec6aldZoNHvKtxSQhayTyyeZUZew==", "leave no salt"},
	}
	for _, c := range cases {
		_, err := ParseHash(c.stored)
		if err == nil {
			t.Errorf("ParseHash(%q) accepted", c.stored)
			continue
		}
		if !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("ParseHash(%q) = %q, want it to mention %q", c.stored, err, c.wantErr)
		}
	}
}

var hashPasswordFormat = regexp.MustCompile(`^\{ARGON2ID\}\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	h1, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{h1, h2} {
		if !hashPasswordFormat.MatchString(h) {
			t.Errorf("HashPassword = %q, not Dovecot's ARGON2ID form with OWASP parameters", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	v, err := parseHash(h1)
	if err != nil {
		t.Fatal(err)
	}
	if v.scheme() != SchemeArgon2ID || !v.verify("correct horse") || v.verify("correct horsE") {
		t.Error("round trip failed")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Error("password longer than MaxPasswordLen hashed")
	}
}

// TestHashPasswordDoveadmChecked keeps one HashPassword output that
// `doveadm pw -t` verified (testdata/README.md).
func TestHashPasswordDoveadmChecked(t *testing.T) {
	t.Parallel()
	const h = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$2jNet7w5bTUWSa0hkd5WVw$Kkk3RXlJ8f/OoUVFl1d0g5T6ccOo/VMKAs8GXiKOGUM"
	if !hashPasswordFormat.MatchString(h) {
		t.Fatal("format drifted from what doveadm verified")
	}
	v, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if !v.verify("correct horse") || v.verify("wrong") {
		t.Error("doveadm-verified hash not verified here")
	}
}

func TestBarePHCUnderCrypt(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	bare := strings.TrimPrefix(h, "{ARGON2ID}")
	for _, stored := range []string{bare, "{CRYPT}" + bare} {
		v, err := parseHash(stored)
		if err != nil || v.scheme() != SchemeArgon2ID || !v.verify("pw") || v.verify("pW") {
			t.Errorf("%s: %v", stored, err)
		}
	}
}

// TestBcryptLongPassword: bcrypt uses the first 72 bytes; crypt(3) and
// Dovecot ignore the rest, and so must verification here, or a user whose
// long password was set with those tools could not log in.
func TestBcryptLongPassword(t *testing.T) {
	t.Parallel()
	pw := strings.Repeat("a", 72) + "tail-one"
	for _, stored := range []string{
		"$2b$05$H9S/SDes.l7gXl6rVMe29ebyStj5Vt5i5D96XwIk7J1EbUmkj8ItG",            // mkpasswd -m bcrypt -R 5
		"{BLF-CRYPT}$2y$05$zQU9tISqe5ypizMSH6bAgO3Ibrm.v5EPMovHw1PYYz6xzsrhxhDWq", // doveadm pw -s BLF-CRYPT -r 5
	} {
		v, err := parseHash(stored)
		if err != nil {
			t.Fatal(err)
		}
		if !v.verify(pw) || !v.verify(strings.Repeat("a", 72)+"other tail") {
			t.Errorf("%s: long password not verified as crypt(3) does", stored)
		}
		if v.verify(strings.Repeat("a", 71) + "b") {
			t.Errorf("%s: wrong password accepted", stored)
		}
	}
}

// FuzzVerify parses stored hashes and verifies passwords against those that
// parse, looking for panics in the verifiers (cheap parameters only, so
// the fuzzer stays fast).
func FuzzVerify(f *testing.F) {
	f.Add("{SHA256-CRYPT}"+vecBare5, "Hello world!")
	f.Add(vecSHA512, "correct horse")
	f.Add("{BLF-CRYPT}$2y$04$qe2OY6ARoXEK1WE12kIS6OTXiP2RV0HYDOoVdYs/e4nTganCgs8Bm", "x")
	f.Add("{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "")
	f.Add("{SSHA512}VraY3v7bWkNbY0r+MyC7rz/c2SC2xQOkRvx7endrKY1HnRumqLYXgI6wv1ec6aldZoNHvKtxSQhayTyyeZUZewAB", "pw")
	f.Add("{PLAIN}secret", "secret")
	f.Add("{MD5-CRYPT}$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8.", "correct horse")
	f.Add("$y$j55$abcdefgh$no66IotEzDMyFwuYdRVR6aak/F64VE2/M8T6xOI.juC", "")
	f.Add("{CRYPT}$y$.55$abcdefgh$no66IotEzDMyFwuYdRVR6aak/F64VE2/M8T6xOI.juC", "x")
	f.Fuzz(func(t *testing.T, stored, pw string) {
		v, err := parseHash(stored)
		if err != nil {
			return
		}
		switch h := v.(type) {
		case *argon2Hash:
			if h.memory > 64 || h.time > 2 {
				return
			}
		case shaCryptHash:
			if h.p.rounds > shaCryptRoundsMin {
				return
			}
		case bcryptHash:
			if c, _ := bcrypt.Cost(h.hash); c > 5 {
				return
			}
		case yescryptHash:
			if yp := h.ys.params; yp.n*uint64(yp.r) > 1<<12 || yp.p > 2 || yp.t > 2 {
				return
			}
		}
		if len(pw) > 256 {
			pw = pw[:256]
		}
		v.verify(pw)
		if v.scheme() == "" {
			t.Fatal("no scheme name")
		}
	})
}
