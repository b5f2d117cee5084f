package pickup

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzSubmit feeds arbitrary request lines and messages through the path a
// socket or maildrop submission takes: whatever is delivered starts with
// popgate's Received header, has only CRLF line ends and carries no Bcc.
func FuzzSubmit(f *testing.F) {
	f.Add([]byte(`{"rcpts":["alice"],"size":14}`), []byte("Subject: s\n\nb\n"))
	f.Add([]byte(`{"from":"","full_name":"X\rY","rcpts":["alice","b@remote.example"],"size":5}`), []byte("Bcc: x"))
	f.Add([]byte(`{"rcpts":["root"],"size":0}`), []byte(""))
	s, k := newTestServer(f, nil)
	f.Fuzz(func(t *testing.T, line, body []byte) {
		k.mu.Lock()
		k.delivered, k.spooled = nil, nil
		k.mu.Unlock()
		br := bufio.NewReader(bytes.NewReader(append(append(line, '\n'), body...)))
		req, _, err := readRequest(br)
		if err != nil {
			return
		}
		if _, err := s.Submit(context.Background(), Cred{UID: 1000, Via: "socket"}, req, br); err != nil {
			return
		}
		for _, d := range append(k.deliveries(), k.spools()...) {
			if !strings.HasPrefix(d.msg, "Received: by mx.example.com (popgate, from userid 1000 ") {
				t.Fatalf("no Received header first:\n%q", d.msg)
			}
			if strings.Contains(strings.ReplaceAll(d.msg, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(d.msg, "\r\n", ""), "\r") {
				t.Fatalf("bare line end:\n%q", d.msg)
			}
			head, _, _ := strings.Cut(d.msg, "\r\n\r\n")
			for _, l := range strings.Split(head, "\r\n") {
				if strings.HasPrefix(strings.ToLower(l), "bcc:") {
					t.Fatalf("Bcc delivered:\n%q", d.msg)
				}
			}
		}
	})
}
