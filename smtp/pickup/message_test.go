package pickup

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNormalizer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\rb", "a\r\nb\r\n"},
		{"no newline", "no newline\r\n"},
		{"ends in CR\r", "ends in CR\r\n"},
		{"", ""},
		{"\n\n", "\r\n\r\n"},
	}
	for _, tt := range tests {
		// Feed one octet at a time as well: line ends split across writes.
		for _, step := range []int{len(tt.in) + 1, 1} {
			var out bytes.Buffer
			n := &normalizer{w: &out}
			for i := 0; i < len(tt.in); i += step {
				if _, err := n.Write([]byte(tt.in[i:min(i+step, len(tt.in))])); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("normalize(%q, step %d) = %q, want %q", tt.in, step, out.String(), tt.want)
			}
		}
	}
	n := &normalizer{w: &bytes.Buffer{}}
	if _, err := n.Write([]byte("a\x00b")); !errors.Is(err, errNUL) {
		t.Errorf("NUL: err = %v", err)
	}
}

func TestRewriteHeader(t *testing.T) {
	fix := headerFix{prefix: "Received: x\r\n", from: "alice@example.com", now: testNow, messageID: "ID@mx.example.com"}
	date := "Date: Mon, 07 Dec 2026 12:00:00 +0000\r\n"
	tests := []struct {
		name, in, want string
		fix            func(*headerFix)
	}{
		{"complete header kept",
			"From: a@b.example\r\nDate: x\r\nMessage-ID: <m@b>\r\nSubject: s\r\n\r\nbody\r\n",
			"Received: x\r\nFrom: a@b.example\r\nDate: x\r\nMessage-ID: <m@b>\r\nSubject: s\r\n\r\nbody\r\n", nil},
		{"missing fields added at the end of the header",
			"Subject: s\r\n\r\nbody\r\n",
			"Received: x\r\nSubject: s\r\nFrom: <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n\r\nbody\r\n", nil},
		{"full name from -F",
			"Subject: s\r\n\r\nb\r\n",
			"Received: x\r\nSubject: s\r\nFrom: \"Cron Daemon\" <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n\r\nb\r\n",
			func(f *headerFix) { f.fullName = "Cron Daemon" }},
		{"full name with a line break cannot inject a header",
			"Subject: s\r\n\r\nb\r\n",
			"Received: x\r\nSubject: s\r\nFrom: \"Evil  Bcc: x@y\" <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n\r\nb\r\n",
			func(f *headerFix) { f.fullName = "Evil\r\nBcc: x@y" }},
		{"Bcc and its continuation dropped",
			"From: a@b.example\r\nDate: x\r\nMessage-ID: <m@b>\r\nBcc: secret@x.example,\r\n  other@x.example\r\nTo: t@x.example\r\n\r\nb\r\n",
			"Received: x\r\nFrom: a@b.example\r\nDate: x\r\nMessage-ID: <m@b>\r\nTo: t@x.example\r\n\r\nb\r\n", nil},
		{"Resent-Bcc dropped, case-insensitive",
			"from: a@b.example\r\ndate: x\r\nmessage-id: <m@b>\r\nRESENT-BCC: s@x.example\r\n\r\nb\r\n",
			"Received: x\r\nfrom: a@b.example\r\ndate: x\r\nmessage-id: <m@b>\r\n\r\nb\r\n", nil},
		{"no header at all: a blank line keeps the text body",
			"just text\r\nmore\r\n",
			"Received: x\r\nFrom: <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n\r\njust text\r\nmore\r\n", nil},
		{"header only",
			"Subject: s\r\n",
			"Received: x\r\nSubject: s\r\nFrom: <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n", nil},
		{"empty message",
			"",
			"Received: x\r\nFrom: <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n", nil},
		{"continuation before any field is body",
			" indented\r\n",
			"Received: x\r\nFrom: <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n\r\n indented\r\n", nil},
		{"From line of an mbox is body",
			"From alice Mon Dec  7\r\nSubject: s\r\n",
			"Received: x\r\nFrom: <alice@example.com>\r\n" + date + "Message-ID: <ID@mx.example.com>\r\n\r\nFrom alice Mon Dec  7\r\nSubject: s\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fix
			if tt.fix != nil {
				tt.fix(&f)
			}
			hdr, off, err := rewriteHeader([]byte(tt.in), true, f)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(hdr) + tt.in[off:]; got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	// A header that does not end within the bound is refused.
	big := strings.Repeat("X-Long: "+strings.Repeat("a", 70)+"\r\n", 100)
	if _, _, err := rewriteHeader([]byte(big), false, fix); err == nil {
		t.Error("unterminated header beyond the bound accepted")
	}
}

func FuzzRewriteHeader(f *testing.F) {
	f.Add([]byte("Subject: s\r\n\r\nbody\r\n"), "Name")
	f.Add([]byte("From: a@b\r\nBcc: x\r\n\tcont\r\n\r\n"), "")
	f.Add([]byte("no header\r\n"), "A\r\nB")
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		var norm bytes.Buffer
		n := &normalizer{w: &norm}
		if _, err := n.Write(in); err != nil {
			return
		}
		_ = n.Close()
		msg := norm.Bytes()
		hdr, off, err := rewriteHeader(msg, true, headerFix{from: "a@example.com", fullName: name, now: testNow, messageID: "i@h"})
		if err != nil {
			t.Fatalf("complete message refused: %v", err)
		}
		if off < 0 || off > len(msg) {
			t.Fatalf("offset %d out of range", off)
		}
		out := string(hdr) + string(msg[off:])
		// Every line of the result ends in CRLF, and no Bcc survives.
		if len(out) > 0 && !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("result does not end in CRLF: %q", out)
		}
		if strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\r") {
			t.Fatalf("bare line end in %q", out)
		}
		head, _, _ := strings.Cut(out, "\r\n\r\n")
		for _, l := range strings.Split(head, "\r\n") {
			if strings.HasPrefix(strings.ToLower(l), "bcc:") {
				t.Fatalf("Bcc survived in %q", out)
			}
		}
	})
}
