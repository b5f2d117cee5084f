package maildir_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/popgate/popgate/maildir"
)

// A message delivered over SMTP to two local users, then fetched by one of
// them over POP3: lock, list, read, mark seen, delete at QUIT.
func Example() {
	store := maildir.NewStore(afero.NewMemMapFs(), "/var/lib/popgate/mail", maildir.Options{
		Hostname: "mx.example.com",
		Now:      func() time.Time { return time.Unix(1732000000, 0) },
	})
	to := []maildir.Address{{Local: "alice", Domain: "example.com"}, {Local: "bob", Domain: "Example.com"}}
	msg := "Subject: hello\r\n\r\nHi!\r\n"
	if _, err := store.Deliver(context.Background(), to, strings.NewReader(msg)); err != nil {
		fmt.Println(err)
		return
	}

	mb, err := store.Open("example.com", "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	unlock, err := mb.Lock()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer unlock()
	msgs, _ := mb.List()
	for _, m := range msgs {
		rc, _ := mb.Open(m)
		body, _ := io.ReadAll(rc)
		rc.Close()
		fmt.Printf("size %d (as sent with CRLF), stored %q\n", m.Size, body)
	}
	_ = mb.MarkSeen(msgs)
	_ = mb.Delete(msgs)
	left, _ := mb.List()
	fmt.Println("left:", len(left))
	// Output:
	// size 23 (as sent with CRLF), stored "Subject: hello\n\nHi!\n"
	// left: 0
}
