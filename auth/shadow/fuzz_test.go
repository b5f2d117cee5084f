package shadow

import (
	"strings"
	"testing"
	"time"

	"github.com/popgate/popgate/auth"
)

// FuzzPlan: whatever passwd and shadow texts parse, Plan never panics,
// and every account it imports has a valid address and a stored hash
// the users file accepts.
func FuzzPlan(f *testing.F) {
	f.Add("alice:x:1000:1000::/home/alice:/bin/sh\nroot:x:0:0::/:/bin/sh\n",
		"alice:"+yescryptHash+":19000:0:99999:7:::\nroot:*:1:0:99999:7:::\n", 1000)
	f.Add("bob:"+md5Hash+":1001:1001::/:/bin/false\n+::::::\n", "", 0)
	f.Add("carol:x:1002:1002::/:/bin/sh\r\n", "carol:!"+sha512Hash+":1:2:3:4:5:6:\r\n", 1)
	f.Add("a:x:1:1::/:\n", "a:abJnggxhB/yWI:::::::\n", 0)
	f.Fuzz(func(t *testing.T, passwd, shadowText string, minUID int) {
		pw, err := ParsePasswd(strings.NewReader(passwd), "passwd")
		if err != nil {
			return
		}
		sh, err := ParseShadow(strings.NewReader(shadowText), "shadow")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, d := range Plan(pw, sh, Options{Domain: "example.com", MinUID: minUID, Now: time.Unix(1.7e9, 0)}) {
			if d.Skip != "" {
				continue
			}
			if err := auth.ValidateUsername(d.User); err != nil || seen[d.User] {
				t.Fatalf("imported bad or duplicate user %q: %v", d.User, err)
			}
			seen[d.User] = true
			if _, err := auth.ParseHash(d.Stored); err != nil {
				t.Fatalf("imported %s with unusable hash %q: %v", d.User, d.Stored, err)
			}
		}
	})
}
