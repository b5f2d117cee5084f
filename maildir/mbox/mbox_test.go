package mbox

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

const fromA = "From alice@example.com Mon Dec  7 13:48:38 2026\n"
const fromB = "From bob@example.com  Tue Dec  8 09:00:01 2026\n"

type got struct {
	text, uidl, status string
	internal           bool
}

func scanAll(t *testing.T, data string) ([]got, []*Message, error) {
	t.Helper()
	var gs []got
	var ms []*Message
	err := Scan(strings.NewReader(data), int64(len(data)), func(m *Message) error {
		gs = append(gs, got{data[m.Start:m.End], m.UIDL, m.Status, m.Internal})
		ms = append(ms, m)
		return nil
	})
	return gs, ms, err
}

func TestScan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []got
	}{
		{"empty file", "", nil},
		{"one message", fromA + "Subject: a\nX-UIDL: 0123456789abcdef0123456789abcdef\n\nbody\n\n",
			[]got{{"Subject: a\nX-UIDL: 0123456789abcdef0123456789abcdef\n\nbody\n", "0123456789abcdef0123456789abcdef", "", false}}},
		{"two messages with status", fromA + "Status: RO\nX-UIDL: u1\n\none\n\n" + fromB + "X-UIDL: u2\n\ntwo\n\n",
			[]got{{"Status: RO\nX-UIDL: u1\n\none\n", "u1", "RO", false}, {"X-UIDL: u2\n\ntwo\n", "u2", "", false}}},
		{"quoted From stays as it is", fromA + "S: x\n\nhi\n>From here\n\n>From there\n\n",
			[]got{{"S: x\n\nhi\n>From here\n\n>From there\n", "", "", false}}},
		{"From in body not after blank line is text", fromA + "S: x\n\nhi\nFrom me Mon Dec  7 13:48:38 2026\n\n",
			[]got{{"S: x\n\nhi\nFrom me Mon Dec  7 13:48:38 2026\n", "", "", false}}},
		{"From after blank line without a date is text", fromA + "S: x\n\nhi\n\nFrom the start, we knew.\n\n",
			[]got{{"S: x\n\nhi\n\nFrom the start, we knew.\n", "", "", false}}},
		{"no trailing blank line", fromA + "S: x\n\nhi\n",
			[]got{{"S: x\n\nhi\n", "", "", false}}},
		{"header-only message", fromA + "S: x\n\n" + fromB + "S: y\n\n",
			[]got{{"S: x\n", "", "", false}, {"S: y\n", "", "", false}}},
		{"consistent Content-Length keeps an unquoted From line", fromA + "Content-Length: 41\n\nhi\n\nFrom me Mon Dec  7 13:48:38 2026\nzzz\n\n" + fromB + "S: y\n\nb\n",
			[]got{{"Content-Length: 41\n\nhi\n\nFrom me Mon Dec  7 13:48:38 2026\nzzz\n", "", "", false}, {"S: y\n\nb\n", "", "", false}}},
		{"inconsistent Content-Length is ignored", fromA + "Content-Length: 5\n\nhi\n\nFrom me Mon Dec  7 13:48:38 2026\nzzz\n\n",
			[]got{{"Content-Length: 5\n\nhi\n", "", "", false}, {"zzz\n", "", "", false}}},
		{"Content-Length past the end is ignored", fromA + "Content-Length: 99999\n\nhi\n\n" + fromB + "S: y\n\n",
			[]got{{"Content-Length: 99999\n\nhi\n", "", "", false}, {"S: y\n", "", "", false}}},
		{"UW folder internal data", fromA + "Subject: " + internalSubject + "\nX-IMAP: 1 2\n\nThis text is part of the internal format\n\n" + fromB + "S: y\n\nb\n\n",
			[]got{{"Subject: " + internalSubject + "\nX-IMAP: 1 2\n\nThis text is part of the internal format\n", "", "", true}, {"S: y\n\nb\n", "", "", false}}},
		{"long lines are fine", fromA + "S: x\n\n" + strings.Repeat("x", 3*readBufSize) + "\n\n",
			[]got{{"S: x\n\n" + strings.Repeat("x", 3*readBufSize) + "\n", "", "", false}}},
		{"first X-UIDL wins, whitespace trimmed", fromA + "X-UIDL:   abc  \nX-UIDL: def\n\n",
			[]got{{"X-UIDL:   abc  \nX-UIDL: def\n", "abc", "", false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gs, _, err := scanAll(t, tc.in)
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if len(gs) != len(tc.want) {
				t.Fatalf("got %d messages %+v, want %d", len(gs), gs, len(tc.want))
			}
			for i := range gs {
				if gs[i] != tc.want[i] {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, gs[i], tc.want[i])
				}
			}
		})
	}
}

func TestScanBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		want      error
		offset    int64
		msgOffset int64
	}{
		{"not an mbox", "Subject: hi\n\nbody\n", ErrNotMbox, 0, -1},
		{"From line without a date", "From someone\nS: x\n\n", ErrNotMbox, 0, -1},
		{"binary file", "\x7fELF\x02\x01\x01\x00\x00", ErrBinary, 7, -1},
		{"NUL inside a message", fromA + "S: x\n\nab\x00c\n", ErrBinary, int64(len(fromA)) + 8, 0},
		{"cut in the middle of a line", fromA + "S: x\n\nbody li", ErrTruncated, int64(len(fromA)) + 13, 0},
		{"cut inside the header", fromA + "S: x\nT: y\n", ErrTruncated, int64(len(fromA)) + 10, 0},
		{"From line only", fromA, ErrTruncated, int64(len(fromA)), 0},
		{"second message truncated", fromA + "S: x\n\nb\n\n" + fromB + "S: y", ErrTruncated, int64(len(fromA) + 9 + len(fromB) + 4), int64(len(fromA) + 9)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := scanAll(t, tc.in)
			var me *Error
			if !errors.As(err, &me) || !errors.Is(err, tc.want) {
				t.Fatalf("Scan = %v, want an *Error wrapping %v", err, tc.want)
			}
			if me.Offset != tc.offset || me.MsgOffset != tc.msgOffset {
				t.Errorf("offsets = %d (message %d), want %d (message %d): %v", me.Offset, me.MsgOffset, tc.offset, tc.msgOffset, err)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("message %q does not say where", err)
			}
		})
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	data := fromA + "S: x\n\n" + fromB + "S: y\n\n"
	stop := errors.New("stop")
	n := 0
	err := Scan(strings.NewReader(data), int64(len(data)), func(*Message) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan = %v after %d calls, want stop after 1", err, n)
	}
}

func TestScanMetadata(t *testing.T) {
	t.Parallel()
	data := fromA + "S: x\n\n" + "From MAILER-DAEMON Tue Dec  8 09:00 2026 +0100\nS: x\n\n"
	_, ms, err := scanAll(t, data)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Scan: %v, %d messages", err, len(ms))
	}
	if ms[0].From != "alice@example.com Mon Dec  7 13:48:38 2026" || ms[0].Offset != 0 {
		t.Errorf("first: From %q offset %d", ms[0].From, ms[0].Offset)
	}
	if want := time.Date(2026, 12, 7, 13, 48, 38, 0, time.UTC); !ms[0].Time.Equal(want) {
		t.Errorf("first time %v, want %v", ms[0].Time, want)
	}
	if want := time.Date(2026, 12, 8, 8, 0, 0, 0, time.UTC); !ms[1].Time.Equal(want) {
		t.Errorf("second time %v, want %v", ms[1].Time, want)
	}
	if ms[1].Offset != int64(len(fromA)+6) {
		t.Errorf("second offset %d", ms[1].Offset)
	}
	// The same headers give the same sum; different ones do not.
	_, again, _ := scanAll(t, data)
	if again[0].HeaderSum != ms[0].HeaderSum || ms[0].HeaderSum == ms[1].HeaderSum {
		t.Error("HeaderSum is not a stable identity")
	}
}

func TestParseFromLine(t *testing.T) {
	t.Parallel()
	good := []string{
		"From alice@example.com Mon Dec  7 13:48:38 2026\n",
		"From alice@example.com Mon Dec 7 13:48 2026\n",
		"From MAILER-DAEMON Fri Jul  8 12:08:34 2011 +0000\n",
		"From a@b Sat Jan  1 00:00:00 PST 2000\n",
		"From \"a b\"@c Sun Feb 29 23:59:60 2004\n",
		"From  Mon Dec  7 13:48:38 2026\n",
	}
	for _, l := range good {
		if _, ok := parseFromLine([]byte(l)); !ok {
			t.Errorf("parseFromLine(%q) rejected", l)
		}
	}
	bad := []string{
		"From here on\n",
		"From a Mon Dec  7 13:48:38\n",
		"From a Mon Foo  7 13:48:38 2026\n",
		"From a Mon Dec 32 13:48:38 2026\n",
		"From a Mon Dec  7 25:48:38 2026\n",
		"From a Mon Dec  7 13:48:38 2026 and more words\n",
		"Fromage Mon Dec  7 13:48:38 2026\n",
		"From a Mon Dec  7 13:48:38 2026 " + strings.Repeat("x", maxFromLine),
	}
	for _, l := range bad {
		if _, ok := parseFromLine([]byte(l)); ok {
			t.Errorf("parseFromLine(%q) accepted", l)
		}
	}
}

// FuzzScan: arbitrary files never panic; messages found are in order,
// inside the file, and when the scan succeeds they never overlap.
func FuzzScan(f *testing.F) {
	f.Add([]byte(fromA + "X-UIDL: u1\nStatus: RO\n\nbody\n>From x\n\n" + fromB + "S: y\n\nb\n\n"))
	f.Add([]byte(fromA + "Content-Length: 3\n\nab\n\n" + fromB + "S: y\n\n"))
	f.Add([]byte("Subject: not mbox\n\n"))
	f.Add([]byte(fromA + "S: x\n\ncut"))
	f.Add([]byte("\x00\x01binary"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var last int64 = -1
		err := Scan(bytes.NewReader(data), int64(len(data)), func(m *Message) error {
			if m.Offset < last || m.Start <= m.Offset || m.End < m.Start || m.End > int64(len(data)) {
				t.Fatalf("bad message bounds %+v after %d (len %d)", m, last, len(data))
			}
			last = m.End
			return nil
		})
		var me *Error
		if err != nil && !errors.As(err, &me) {
			t.Fatalf("error is not an *Error: %v", err)
		}
		if me != nil && (me.Offset < 0 || me.Offset > int64(len(data))) {
			t.Fatalf("error offset %d outside file of %d bytes", me.Offset, len(data))
		}
	})
}

// BenchmarkScan splits a 16 MiB spool of 4 KiB messages.
func BenchmarkScan(b *testing.B) {
	var buf bytes.Buffer
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\n", 55)
	for i := 0; buf.Len() < 16<<20; i++ {
		buf.WriteString(fromA + "Subject: m\nX-UIDL: 0123456789abcdef0123456789abcdef\nStatus: RO\n\n" + body + "\n")
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		n := 0
		if err := Scan(bytes.NewReader(data), int64(len(data)), func(*Message) error { n++; return nil }); err != nil || n == 0 {
			b.Fatal(err, n)
		}
	}
}
