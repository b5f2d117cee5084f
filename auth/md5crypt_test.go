package auth

import "testing"

// TestMD5CryptVectors: hashes made by glibc/libxcrypt (`mkpasswd -m
// md5crypt`) and OpenSSL (`openssl passwd -1 -salt S PW`), recomputed here
// byte for byte, including the edge cases of the algorithm: an empty
// password (the length loop never runs), an empty salt, the full 8-byte
// salt, and a password longer than one MD5 digest.
func TestMD5CryptVectors(t *testing.T) {
	t.Parallel()
	cases := []struct{ pw, hash string }{
		{"correct horse", "$1$q/FbewtH$MG6yVn2o9McxPtowv9Ju8."},
		{"pässwörd ünïcode", "$1$5Y9y6rAm$El.brSdDZsvHAL6TMGy59/"},
		{"x", "$1$GsD.Jnuh$48v1/4rFFgmY0jeCpZhNQ1"},
		{"", "$1$.lfhrjMB$pptnXjL9JTlOkDReD1tKE1"},
		{"pppppppppppppppppppppppppppppppppppppppp", "$1$hUqR15N0$9eZDuAYmluHX3vNoUjRpw."},
		{"correct horse", "$1$ab$.ThsTrbyIbEahEdE8LNwj1"},
		{"x", "$1$abcdefgh$znAnv9M.XU2pRYfmSs46h/"},
		{"x", "$1$$LP5.V3ajGqHDdXW6XwZQy."},
	}
	for _, c := range cases {
		for _, stored := range []string{c.hash, "{CRYPT}" + c.hash, "{MD5-CRYPT}" + c.hash} {
			v, err := parseHash(stored)
			if err != nil {
				t.Fatalf("%s: %v", stored, err)
			}
			if !v.verify(c.pw) {
				t.Errorf("%s: right password %q refused", stored, c.pw)
			}
			if v.verify(c.pw + "x") {
				t.Errorf("%s: wrong password accepted", stored)
			}
		}
		m, _ := parseMD5Crypt(SchemeMD5Crypt, c.hash)
		if got := string(md5CryptDigest([]byte(c.pw), []byte(m.(md5CryptHash).salt))); got != c.hash[len(c.hash)-md5CryptChars:] {
			t.Errorf("%q: digest %s, want %s", c.pw, got, c.hash)
		}
	}
}
