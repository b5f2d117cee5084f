package maildir

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

func importMsg(uid string, t time.Time, seq int64, body string) ImportMessage {
	return ImportMessage{UID: uid, Time: t, Seq: seq, Body: strings.NewReader(body)}
}

// TestImportKeepsUIDs: imported messages list with the UIDs they brought,
// in source order, among the maildir's own mail by delivery time; the UIDs
// survive marking seen and a new Store (a restart).
func TestImportKeepsUIDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := NewStore(afero.NewOsFs(), dir, Options{Hostname: "mx", Now: fixedClock})
	ctx := context.Background()
	// Delivered by popgate at testTime, before the import.
	if _, err := s.Deliver(ctx, []Address{{"alice", "example.com"}}, strings.NewReader("Subject: new\n\nnew\n")); err != nil {
		t.Fatal(err)
	}
	mb := mustOpen(t, s, "example.com", "alice")
	old := testTime.Add(-time.Hour)
	uids := []string{"0123456789abcdef0123456789abcdef", "a/b:c,d%e", "z", "ffffffffffffffffffffffffffffffff"}
	for i, u := range uids {
		m := importMsg(u, old, int64(i+1), "Subject: "+u+"\r\n\r\nbody\r\n")
		m.Seen = i == 1
		m.Old = i == 2
		name, err := mb.Import(ctx, m)
		if err != nil {
			t.Fatalf("Import %q: %v", u, err)
		}
		if strings.ContainsAny(strings.SplitN(name, ":", 2)[0], "/%") {
			t.Errorf("name %q holds a character a maildir name must not", name)
		}
	}
	// The same second, more than nine: ordered as numbers, not as text.
	for i := 5; i <= 12; i++ {
		if _, err := mb.Import(ctx, importMsg("u"+string(rune('a'+i)), old, int64(i), "S: x\n\nb\n")); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		msgs := mustList(t, mustOpen(t, s, "example.com", "alice"))
		var got []string
		for _, m := range msgs {
			got = append(got, m.UID)
		}
		want := append([]string(nil), uids...)
		for i := 5; i <= 12; i++ {
			want = append(want, "u"+string(rune('a'+i)))
		}
		if len(got) != len(want)+1 {
			t.Fatalf("UIDs %q, want %q then the delivered one", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("UIDs %q, want %q then the delivered one", got, want)
			}
		}
		if msgs[0].Size != int64(len("Subject: "+uids[0]+"\r\n\r\nbody\r\n")) {
			t.Errorf("size %d", msgs[0].Size)
		}
	}
	check(s)
	if n := dirNames(t, afero.NewOsFs(), filepath.Join(mb.Path(), "cur")); len(n) != 2 || !strings.HasSuffix(n[0]+n[1], ":2,S") && !strings.HasSuffix(n[0], ":2,S") {
		t.Errorf("cur/ = %q, want the seen and the old message", n)
	}
	msgs := mustList(t, mb)
	if err := mb.MarkSeen(msgs); err != nil {
		t.Fatal(err)
	}
	check(NewStore(afero.NewOsFs(), dir, Options{Hostname: "mx", Now: fixedClock}))
	if got := readMessage(t, mb, msgs[0]); got != "Subject: "+uids[0]+"\n\nbody\n" {
		t.Errorf("message text %q", got)
	}
	if n := dirNames(t, afero.NewOsFs(), filepath.Join(mb.Path(), "tmp")); len(n) != 0 {
		t.Errorf("tmp/ left with %q", n)
	}
}

func TestImportBadUID(t *testing.T) {
	t.Parallel()
	s, _ := newMemStore(t)
	mb := mustOpen(t, s, "example.com", "alice")
	for _, u := range []string{"", "has space", strings.Repeat("x", 71), "tab\t"} {
		if _, err := mb.Import(context.Background(), importMsg(u, testTime, 1, "S: x\n\n")); err == nil {
			t.Errorf("Import accepted UID %q", u)
		}
	}
}

// TestListDuplicateOwnUIDs: two imported names carrying one UID (two
// imports of copies of one spool) still list with distinct UIDs.
func TestListDuplicateOwnUIDs(t *testing.T) {
	t.Parallel()
	s, _ := newMemStore(t)
	mb := mustOpen(t, s, "example.com", "alice")
	for i := range 2 {
		if _, err := mb.Import(context.Background(), importMsg("same", testTime, int64(i), "S: x\n\n")); err != nil {
			t.Fatal(err)
		}
	}
	msgs := mustList(t, mb)
	if len(msgs) != 2 || msgs[0].UID != "same" || msgs[1].UID == "same" || !ValidUID(msgs[1].UID) {
		t.Fatalf("messages %+v: want UID same, then another", msgs)
	}
}

func TestImportLog(t *testing.T) {
	t.Parallel()
	s, fs := newMemStore(t)
	mb := mustOpen(t, s, "example.com", "alice")
	l, err := mb.OpenImportLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b", "a"} {
		if err := l.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mb.Path(), importLogFile)
	if got := readAll(t, fs, p); got != importLogHeader+"\na\nb\n" {
		t.Fatalf("log %q", got)
	}
	// A crash cut the last record: it is not trusted, and the next one
	// starts on its own line.
	writeFile(t, fs, p, importLogHeader+"\na\nb\nc")
	l, err = mb.OpenImportLog()
	if err != nil {
		t.Fatal(err)
	}
	if !l.Has("a") || !l.Has("b") || l.Has("c") || l.Len() != 2 {
		t.Fatalf("reopened log: a %v b %v c %v len %d", l.Has("a"), l.Has("b"), l.Has("c"), l.Len())
	}
	if err := l.Add("d"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs, p); got != importLogHeader+"\na\nb\nc\nd\n" {
		t.Fatalf("log %q", got)
	}
	writeFile(t, fs, p, "something else\n")
	if _, err := mb.OpenImportLog(); err == nil {
		t.Fatal("a log with a foreign header was accepted")
	}
}

func TestCleanImportTmp(t *testing.T) {
	t.Parallel()
	s, fs := newMemStore(t)
	mb := mustOpen(t, s, "example.com", "alice")
	writeFile(t, fs, filepath.Join(mb.Path(), "tmp", importTmpPrefix+"1.I1P1Q1.mx"), "half")
	writeFile(t, fs, filepath.Join(mb.Path(), "tmp", "1.M1P1Q1.mx"), "a delivery in progress")
	if err := mb.CleanImportTmp(); err != nil {
		t.Fatal(err)
	}
	if n := dirNames(t, fs, filepath.Join(mb.Path(), "tmp")); len(n) != 1 || n[0] != "1.M1P1Q1.mx" {
		t.Fatalf("tmp/ = %q, want only the delivery's file", n)
	}
}

func TestUIDField(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"0123456789abcdef0123456789abcdef", "a/b", "x:y", "p,q", "100%", "~!"} {
		base := "1.I1P1Q1.mx" + uidNameField(u) + ",S=1,W=2"
		if got, ok := uidField(base); !ok || got != u {
			t.Errorf("uidField(%q) = %q, %v; want %q", base, got, ok, u)
		}
		if strings.ContainsAny(base, "/:") {
			t.Errorf("name %q", base)
		}
	}
	for _, base := range []string{"1.M1.mx,S=1", "x,U=", "x,X=zz", "x,X=2020", "x,U=" + strings.Repeat("a", 71)} {
		if u, ok := uidField(base); ok {
			t.Errorf("uidField(%q) = %q, want none", base, u)
		}
	}
}

// TestImportMany: more than a batch of messages, reported durable in
// order; a bad message stops the import after the ones before it.
func TestImportMany(t *testing.T) {
	t.Parallel()
	s, _ := newMemStore(t)
	mb := mustOpen(t, s, "example.com", "alice")
	n := importBatch + 44
	uid := func(i int) string { return "uid" + strconv.Itoa(i) }
	var order []int
	err := mb.ImportMany(context.Background(), n, func(i int) ImportMessage {
		return importMsg(uid(i), testTime, int64(i), "Subject: "+uid(i)+"\n\nbody\n")
	}, func(i int, name string) error {
		if !strings.Contains(name, ",U="+uid(i)+",") {
			t.Errorf("message %d named %q", i, name)
		}
		order = append(order, i)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("done called out of order: %v", order)
		}
	}
	msgs := mustList(t, mb)
	if len(order) != n || len(msgs) != n {
		t.Fatalf("%d done, %d listed, want %d", len(order), len(msgs), n)
	}
	for i, m := range msgs {
		if m.UID != uid(i) {
			t.Fatalf("message %d has UID %q, want %q", i, m.UID, uid(i))
		}
	}

	other := mustOpen(t, s, "example.com", "bob")
	var dones int
	err = other.ImportMany(context.Background(), 10, func(i int) ImportMessage {
		u := uid(i)
		if i == 5 {
			u = "bad uid"
		}
		return importMsg(u, testTime, int64(i), "S: x\n\n")
	}, func(int, string) error { dones++; return nil })
	if err == nil || !strings.Contains(err.Error(), "invalid unique-id") || dones != 5 {
		t.Fatalf("ImportMany with a bad 6th message: %v after %d done, want an error after 5", err, dones)
	}
}
