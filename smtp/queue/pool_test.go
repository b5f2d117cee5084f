package queue

import (
	"os"
	"testing"
)

// Enqueue reuses its normalising reader and copy buffer; nothing of one
// message (a pending CR, 8-bit octets, the size) may leak into the next.
func TestEnqueueReusedBuffersStartClean(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	msgs := []struct{ in, want string }{
		{"Subject: caf\xc3\xa9\r\n\r\nends in a bare CR\r", "Subject: caf\xc3\xa9\r\n\r\nends in a bare CR\r\n"},
		{"Subject: plain\n\nbody", "Subject: plain\r\n\r\nbody\r\n"},
		{"Subject: big\r\n\r\n" + string(make([]byte, 3*copyBufSize)), ""},
		{"Subject: small\r\n\r\nx\r\n", "Subject: small\r\n\r\nx\r\n"},
	}
	for i, m := range msgs {
		id := h.enqueue(t, "alice@local.test", []string{"bob@remote.test"}, m.in)
		got, err := os.ReadFile(h.q.msgPath(id))
		if err != nil {
			t.Fatal(err)
		}
		e, err := h.q.readEnv(id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Size > int64(len(got)) {
			t.Fatalf("message %d: envelope size %d, file %d bytes", i, e.Size, len(got))
		}
		got = got[:e.Size] // the envelope and trailer follow (checked by readEnv)
		if want8 := i == 0; e.EightBit != want8 {
			t.Errorf("message %d: EightBit = %v, want %v", i, e.EightBit, want8)
		}
		if m.want != "" && string(got) != m.want {
			t.Errorf("message %d: spooled %q, want %q", i, got, m.want)
		}
		if m.want == "" && len(got) != len(m.in)+2 {
			t.Errorf("message %d: spooled %d bytes, want %d", i, len(got), len(m.in)+2)
		}
	}
}
