package acl

import (
	"strings"
	"testing"
)

func TestParseSharedURL(t *testing.T) {
	good := []struct {
		url  string
		want sharedStore
	}{
		{"redis://127.0.0.1", sharedStore{addr: "127.0.0.1:6379", redacted: "redis://127.0.0.1"}},
		{"redis://127.0.0.1:6380/3", sharedStore{addr: "127.0.0.1:6380", db: 3, redacted: "redis://127.0.0.1:6380/3"}},
		{"rediss://popgate:s3cret@redis.example.net:6380/2", sharedStore{addr: "redis.example.net:6380", tls: true, user: "popgate", password: "s3cret", db: 2, redacted: "rediss://redis.example.net:6380/2"}},
		{"redis://:s3cret@[2001:db8::1]/0", sharedStore{addr: "[2001:db8::1]:6379", password: "s3cret", redacted: "redis://[2001:db8::1]/0"}},
		{"valkeys://popgate@valkey.example.net/", sharedStore{addr: "valkey.example.net:6379", tls: true, user: "popgate", redacted: "valkeys://valkey.example.net/"}},
	}
	for _, c := range good {
		got, err := parseSharedURL(c.url)
		if err != nil || got != c.want {
			t.Errorf("parseSharedURL(%q) = %+v, %v; want %+v", c.url, got, err, c.want)
		}
	}
	bad := []struct{ url, want string }{
		{"http://127.0.0.1:6379", `scheme "http"`},
		{"redis:///0", "no host"},
		{"redis://:6379/0", "no host"},
		{"redis:127.0.0.1", "no host"},
		{"redis://127.0.0.1:0/0", `port "0"`},
		{"redis://127.0.0.1:99999/0", `port "99999"`},
		{"redis://127.0.0.1/zero", `database "zero"`},
		{"redis://127.0.0.1/-1", `database "-1"`},
		{"redis://127.0.0.1/0/1", `database "0/1"`},
		{"redis://127.0.0.1/0?protocol=2", "query parameters"},
		{"redis://u:pa%zzss@127.0.0.1/0", "not a URL"},
	}
	for _, c := range bad {
		_, err := parseSharedURL(c.url)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseSharedURL(%q) = %v, want an error with %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pa%zzss") {
			t.Errorf("parseSharedURL(%q): error %q repeats the password", c.url, err)
		}
	}
}
