package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/popgate/popgate/pop3/pop3test"
)

// fileDrop serves one user's messages from files, the way the maildir
// adapter does: Open returns the *os.File.
type fileDrop struct{ paths []string }

func (d *fileDrop) Open(context.Context, string) (Mailbox, error) { return fileBox{d}, nil }

type fileBox struct{ d *fileDrop }

func (b fileBox) List() ([]MessageInfo, error) {
	var out []MessageInfo
	for i, p := range b.d.paths {
		data, err := os.ReadFile(p) // test only: the server never does this
		if err != nil {
			return nil, err
		}
		out = append(out, MessageInfo{UID: fmt.Sprintf("file-%d", i), Size: crlfSize(data)})
	}
	return out, nil
}
func (b fileBox) Open(i int) (io.ReadCloser, error) { return os.Open(b.d.paths[i]) }
func (b fileBox) Commit([]int) error                { return nil }
func (b fileBox) Close() error                      { return nil }

// startFileServer runs a server over files and returns a logged-in client.
func startFileServer(t *testing.T, paths ...string) *client {
	t.Helper()
	auth := &memAuth{users: map[string]string{"alice@example.com": "secret"}}
	srv := NewServer(Config{}, auth, &fileDrop{paths}, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := pop3test.NewClient(t, conn)
	login(c, "alice", "secret")
	return c
}

// retrHash RETRieves message n and hashes exactly want bytes of body
// (terminator included), then checks nothing else follows.
func retrHash(t testing.TB, c *client, n int, want int64) []byte {
	t.Helper()
	c.Expect(fmt.Sprintf("RETR %d", n), "+OK")
	h := sha256.New()
	if _, err := io.CopyN(h, c.R, want); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

// TestStreamLargeLFFile sends a 20 MB LF file with dot lines and checks
// the exact CRLF, dot-stuffed bytes, and that the whole RETR allocates
// about as much as a 1 KB one: the body is streamed, never loaded.
func TestStreamLargeLFFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) (string, []byte) {
		var b bytes.Buffer
		b.WriteString("Subject: big\n\n")
		for i := 0; b.Len() < size; i++ {
			if i%7 == 0 {
				b.WriteString(".leading dot\n")
			}
			fmt.Fprintf(&b, "line %d of a large message body, with some text to fill it up\n", i)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		// Reference output from net/textproto's DotWriter.
		var want bytes.Buffer
		bw := bufio.NewWriter(&want)
		dw := textproto.NewWriter(bw).DotWriter()
		dw.Write(b.Bytes())
		dw.Close()
		bw.Flush()
		return p, want.Bytes()
	}
	small, wantSmall := write("small", 1024)
	big, wantBig := write("big", 20<<20)
	c := startFileServer(t, small, big)

	measure := func(n int, want []byte) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		got := retrHash(t, c, n, int64(len(want)))
		runtime.ReadMemStats(&after)
		sum := sha256.Sum256(want)
		if !bytes.Equal(got, sum[:]) {
			t.Fatalf("message %d: streamed bytes differ from the CRLF, dot-stuffed reference", n)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	measure(1, wantSmall) // warm the pools
	allocSmall := measure(1, wantSmall)
	allocBig := measure(2, wantBig)
	t.Logf("allocated during RETR: 1 KB message %d bytes, 20 MB message %d bytes", allocSmall, allocBig)
	if allocBig > allocSmall+256<<10 {
		t.Fatalf("RETR of 20 MB allocated %d bytes (1 KB: %d): body not streamed", allocBig, allocSmall)
	}
	run(c, []step{{"NOOP", "+OK", nil}, {"QUIT", "+OK", nil}})
}

// TestIdleSessionMemory opens 1,000 sessions and reports the heap and
// stack they hold; the target is well under 200 KB each.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	const n = 1000
	e := newEnv(t, func(c *Config) { c.MaxConns, c.MaxConnsPerIP = 2*n, 2*n })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	buf := make([]byte, 512)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		io.WriteString(c, "CAPA\r\n")
		if _, err := io.ReadAtLeast(c, buf, 1); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapInuse) - int64(before.HeapInuse)
	stack := int64(after.StackInuse) - int64(before.StackInuse)
	per := (heap + stack) / n
	t.Logf("%d idle sessions: heap %d KB, stacks %d KB, %d bytes per session (client side included)", n, heap>>10, stack>>10, per)
	if per > 200<<10 {
		t.Fatalf("%d bytes per idle session, want < 200 KB", per)
	}
	for _, c := range conns {
		c.Close()
	}
}

// benchEnv is a server with one user holding msgs messages of size bytes.
func benchEnv(b *testing.B, msgs, size int) *env {
	e := newEnv(b, nil)
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n", size/50+1)[:size]
	st := &memStore{gone: map[string]bool{}}
	for i := 0; i < msgs; i++ {
		st.msgs = append(st.msgs, &memMsg{uid: fmt.Sprintf("u%07d", i), data: []byte(body)})
	}
	e.drop.boxes["carol@example.com"] = st
	e.auth.users["carol@example.com"] = "pw"
	return e
}

// BenchmarkRETR measures a session RETRieving 50 × 36 KB over loopback.
func BenchmarkRETR(b *testing.B) {
	e := benchEnv(b, 50, 36*1024)
	c := e.dial(b)
	login(c, "carol", "pw")
	size := crlfSize(e.drop.boxes["carol@example.com"].msgs[0].data)
	b.SetBytes(50 * size)
	b.ReportAllocs()
	for b.Loop() {
		for i := 1; i <= 50; i++ {
			c.Send(fmt.Sprintf("RETR %d", i))
			c.Line()
			if _, err := io.CopyN(io.Discard, c.R, size+3); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkLogin measures connect, USER/PASS, STAT, QUIT.
func BenchmarkLogin(b *testing.B) {
	e := benchEnv(b, 10, 1024)
	b.ReportAllocs()
	for b.Loop() {
		c := e.dial(b)
		run(c, []step{{"", "+OK", nil}, {"USER carol", "+OK", nil}, {"PASS pw", "+OK", nil}, {"STAT", "+OK 10", nil}, {"QUIT", "+OK", nil}})
		c.Conn.Close()
		<-e.drop.closed
	}
}

// BenchmarkUIDL100k measures a UIDL listing of 100,000 messages.
func BenchmarkUIDL100k(b *testing.B) {
	e := benchEnv(b, 100000, 100)
	c := e.dial(b)
	login(c, "carol", "pw")
	b.ReportAllocs()
	for b.Loop() {
		c.Send("UIDL")
		c.Line()
		for {
			l, err := c.R.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if string(l) == ".\r\n" {
				break
			}
		}
	}
}
