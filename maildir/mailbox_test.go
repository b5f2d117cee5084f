package maildir

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

const mdir = "/data/mail/example.com/alice"

// foreign files as Postfix virtual(8) or Dovecot leave them.
var foreign = []struct {
	path, content string
	uid           string // "" means hashed
	size          int64
}{
	{mdir + "/cur/1731000000.V801I10M1.host:2,S", "Subject: old\n\nseen\n", "1731000000.V801I10M1.host", 22},
	{mdir + "/new/1732000000.V801I1234M567.host", "Subject: lf\n\nline\n", "1732000000.V801I1234M567.host", 21},
	{mdir + "/new/1732000000.V801I1235M9.host", "Subject: crlf\r\n\r\nline\r\n", "1732000000.V801I1235M9.host", 23},
	{mdir + "/new/1732000001.M5P7Q1.dovecot,S=9", "a\nb\r\ncc\n", "1732000001.M5P7Q1.dovecot,S=9", 10},
	{mdir + "/new/1732000002.with space", "x\n", "", 3},
}

func setupForeign(t *testing.T, fs afero.Fs) {
	t.Helper()
	for _, f := range foreign {
		writeFile(t, fs, f.path, f.content)
	}
	// Not messages: hidden files, and whatever is in tmp/.
	writeFile(t, fs, mdir+"/new/.partial", "junk")
	writeFile(t, fs, mdir+"/tmp/1732000003.inprogress", "junk")
}

func TestListForeignAndOwn(t *testing.T) {
	s, fs := newMemStore(t)
	setupForeign(t, fs)
	names, err := s.Deliver(context.Background(), []Address{{"alice", "example.com"}}, strings.NewReader(crlfMessage))
	if err != nil {
		t.Fatal(err)
	}
	msgs := mustList(t, mustOpen(t, s, "example.com", "alice"))
	// Within second 1732000000: "M123456P…" < "V801I1234…" < "V801I1235…".
	type want struct {
		uid  string
		size int64
	}
	exp := []want{
		{foreign[0].uid, foreign[0].size},
		{names[0], int64(len(crlfMessage))},
		{foreign[1].uid, foreign[1].size},
		{foreign[2].uid, foreign[2].size},
		{foreign[3].uid, foreign[3].size},
		{uidFor("1732000002.with space"), foreign[4].size},
	}
	if len(msgs) != len(exp) {
		t.Fatalf("listed %d messages: %+v; want %d", len(msgs), msgs, len(exp))
	}
	for i, m := range msgs {
		if m.UID != exp[i].uid || m.Size != exp[i].size {
			t.Errorf("message %d = %q size %d; want %q size %d", i, m.UID, m.Size, exp[i].uid, exp[i].size)
		}
		if !validUID(m.UID) {
			t.Errorf("UID %q invalid", m.UID)
		}
	}
	// Contents come back exactly as stored.
	mb := mustOpen(t, s, "example.com", "alice")
	if got := readMessage(t, mb, msgs[2]); got != foreign[1].content {
		t.Errorf("read %q, want %q", got, foreign[1].content)
	}
	// Listing again gives the same snapshot.
	again := mustList(t, mb)
	for i := range msgs {
		if again[i] != msgs[i] {
			t.Errorf("second List differs at %d: %+v vs %+v", i, again[i], msgs[i])
		}
	}
}

func TestListMissingMaildirIsEmpty(t *testing.T) {
	s, fs := newMemStore(t)
	msgs, err := mustOpen(t, s, "example.com", "nobody").List()
	if err != nil || len(msgs) != 0 {
		t.Fatalf("List = %v, %v; want empty", msgs, err)
	}
	if _, err := fs.Stat("/data/mail/example.com/nobody"); err == nil {
		t.Error("List created the maildir")
	}
}

func TestListDuplicateBaseGetsDistinctUIDs(t *testing.T) {
	s, fs := newMemStore(t)
	writeFile(t, fs, mdir+"/new/1732000000.dup.host", "a\n")
	writeFile(t, fs, mdir+"/cur/1732000000.dup.host:2,S", "b\n")
	msgs := mustList(t, mustOpen(t, s, "example.com", "alice"))
	if len(msgs) != 2 || msgs[0].UID == msgs[1].UID {
		t.Fatalf("msgs %+v: want two distinct UIDs", msgs)
	}
	if msgs[0].UID != "1732000000.dup.host" || !validUID(msgs[1].UID) {
		t.Errorf("UIDs %q %q", msgs[0].UID, msgs[1].UID)
	}
}

func TestOpenMovedAndVanished(t *testing.T) {
	s, fs := newMemStore(t)
	setupForeign(t, fs)
	mb := mustOpen(t, s, "example.com", "alice")
	msgs := mustList(t, mb)
	lf := msgs[1] // new/1732000000.V801I1234M567.host
	if lf.UID != foreign[1].uid {
		t.Fatalf("unexpected order: %+v", msgs)
	}
	// Another program marks it seen: found in cur/.
	if err := fs.Rename(foreign[1].path, mdir+"/cur/"+foreign[1].uid+":2,S"); err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, mb, lf); got != foreign[1].content {
		t.Errorf("after move: %q", got)
	}
	// ... with other flags too: found by scanning.
	if err := fs.Rename(mdir+"/cur/"+foreign[1].uid+":2,S", mdir+"/cur/"+foreign[1].uid+":2,FRS"); err != nil {
		t.Fatal(err)
	}
	if got := readMessage(t, mb, lf); got != foreign[1].content {
		t.Errorf("after flag change: %q", got)
	}
	// Deleted by someone else: ErrNotFound.
	if err := fs.Remove(mdir + "/cur/" + foreign[1].uid + ":2,FRS"); err != nil {
		t.Fatal(err)
	}
	rc, err := mb.Open(lf)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a vanished message: %v, %v; want ErrNotFound", rc, err)
	}
	if _, err := mb.Open(Message{UID: "x"}); err == nil {
		t.Error("Open of a Message not from List: no error")
	}
}

func TestDeleteMessages(t *testing.T) {
	s, fs := newMemStore(t)
	setupForeign(t, fs)
	mb := mustOpen(t, s, "example.com", "alice")
	msgs := mustList(t, mb)
	// msgs[0] is in cur/, msgs[1] gets moved by someone else, msgs[2] is
	// deleted by someone else; msgs[3] and msgs[4] are kept.
	if err := fs.Rename(foreign[1].path, mdir+"/cur/"+foreign[1].uid+":2,RS"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(foreign[2].path); err != nil {
		t.Fatal(err)
	}
	if err := mb.Delete(msgs[:3]); err != nil {
		t.Fatal(err)
	}
	left := mustList(t, mb)
	if len(left) != 2 || left[0].UID != foreign[3].uid || left[1].UID != msgs[4].UID {
		t.Fatalf("left %+v", left)
	}
	// Deleting again is not an error.
	if err := mb.Delete(msgs); err != nil {
		t.Fatal(err)
	}
	if left := mustList(t, mb); len(left) != 0 {
		t.Fatalf("left %+v after deleting all", left)
	}
}

func TestMarkSeenKeepsUIDAndSize(t *testing.T) {
	s, fs := newMemStore(t)
	setupForeign(t, fs)
	writeFile(t, fs, mdir+"/cur/1732000009.flagged.host:2,F", "z\n")
	names, err := s.Deliver(context.Background(), []Address{{"alice", "example.com"}}, strings.NewReader(crlfMessage))
	if err != nil {
		t.Fatal(err)
	}
	mb := mustOpen(t, s, "example.com", "alice")
	before := mustList(t, mb)
	if err := mb.MarkSeen(before); err != nil {
		t.Fatal(err)
	}
	after := mustList(t, mb)
	if len(after) != len(before) {
		t.Fatalf("%d messages after MarkSeen, %d before", len(after), len(before))
	}
	for i := range before {
		if after[i].UID != before[i].UID || after[i].Size != before[i].Size {
			t.Errorf("message %d: %q/%d became %q/%d", i, before[i].UID, before[i].Size, after[i].UID, after[i].Size)
		}
		if after[i].sub != subCur {
			t.Errorf("message %q still in %s", after[i].UID, after[i].sub)
		}
	}
	if got := dirNames(t, fs, mdir+"/new"); len(got) != 1 || got[0] != ".partial" {
		t.Errorf("new/ = %q, want only the hidden file", got)
	}
	for _, want := range []string{names[0] + ":2,S", "1732000009.flagged.host:2,FS", "1731000000.V801I10M1.host:2,S"} {
		if _, err := fs.Stat(mdir + "/cur/" + want); err != nil {
			t.Errorf("cur/%s: %v", want, err)
		}
	}
	// The old snapshot still opens (the file moved new/ -> cur/).
	if before[1].UID != names[0] || before[6].UID != "1732000009.flagged.host" {
		t.Fatalf("unexpected order %+v", before)
	}
	if got := readMessage(t, mb, before[1]); got != lfMessage {
		t.Errorf("read through stale snapshot: %q", got)
	}
	if got := readMessage(t, mb, before[6]); got != "z\n" {
		t.Errorf("read through stale snapshot (cur/ flags changed): %q", got)
	}
	// Marking again, or marking vanished messages, changes nothing and fails not.
	if err := mb.MarkSeen(before); err != nil {
		t.Fatal(err)
	}
	if err := mb.MarkSeen(after); err != nil {
		t.Fatal(err)
	}
	if again := mustList(t, mb); len(again) != len(after) {
		t.Errorf("second MarkSeen changed the list: %+v", again)
	}
}

func TestMarkSeenCreatesMissingCur(t *testing.T) {
	s, fs := newMemStore(t)
	writeFile(t, fs, mdir+"/new/1732000000.only-new.host", "x\n") // no cur/, no tmp/
	mb := mustOpen(t, s, "example.com", "alice")
	msgs := mustList(t, mb)
	if err := mb.MarkSeen(msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(mdir + "/cur/1732000000.only-new.host:2,S"); err != nil {
		t.Fatalf("not moved to cur/: %v", err)
	}
	if got := mustList(t, mb); len(got) != 1 || got[0].UID != msgs[0].UID || got[0].Size != 3 {
		t.Errorf("after MarkSeen: %+v", got)
	}
}

func TestSessionOnDisk(t *testing.T) {
	root := t.TempDir()
	fs := afero.NewOsFs()
	s := NewStore(fs, root, Options{Hostname: "mx"})
	for i := range 3 {
		if _, err := s.Deliver(context.Background(), []Address{{"alice", "example.com"}}, strings.NewReader(strings.Repeat("l\r\n", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	mb := mustOpen(t, s, "example.com", "alice")
	unlock, err := mb.Lock()
	if err != nil {
		t.Fatal(err)
	}
	msgs := mustList(t, mb)
	if len(msgs) != 3 || msgs[0].Size != 3 || msgs[2].Size != 9 {
		t.Fatalf("list %+v", msgs)
	}
	if got := readMessage(t, mb, msgs[1]); got != "l\nl\n" {
		t.Errorf("RETR %q", got)
	}
	if err := mb.MarkSeen(msgs); err != nil {
		t.Fatal(err)
	}
	if err := mb.Delete(msgs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	left := mustList(t, mustOpen(t, NewStore(fs, root, Options{}), "example.com", "alice"))
	if len(left) != 1 || left[0].UID != msgs[2].UID || left[0].Size != 9 || left[0].sub != subCur {
		t.Fatalf("after the session: %+v", left)
	}
}
