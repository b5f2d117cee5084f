package auth

import (
	"context"
	"testing"
)

func benchmarkAuthenticate(b *testing.B, stored, pw string) {
	s := newTestService(b, "alice@example.com:"+stored+"\n", noLimits)
	ctx := context.Background()
	ip := mustAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, ip, "alice@example.com", pw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticatePlain(b *testing.B) {
	benchmarkAuthenticate(b, "{PLAIN}secret", "secret")
}

func BenchmarkAuthenticateArgon2ID(b *testing.B) {
	h, err := HashPassword("secret")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkAuthenticate(b, h, "secret")
}
