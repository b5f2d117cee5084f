package acl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const mirrorAccess = `192.168.0	RELAY
Connect:192.168.0	REJECT
spamford.com	REJECT
ok.spamford.com	OK
From:Spammer@AOL.com	REJECT
To:friend.example	RELAY
Spam:abuse@	FRIEND
IPv6:2002:C0A8::1	RELAY
Connect:IPv6:2002:c0a8:0002	ERROR:4.3.2:"451 Not now"
skip.example	SKIP
IPv6:2001:db8	RELAY
IPv6:2001:db8:0:1	RELAY
GreetPause:10.1	5000
`

func TestEntries(t *testing.T) {
	rules, err := ParseRulesString(mirrorAccess)
	if err != nil {
		t.Fatal(err)
	}
	grants := []Grant{
		{IP: ip("198.51.100.7"), User: "alice"},
		{IP: ip("::ffff:198.51.100.8"), User: "bob"},
		{IP: ip("2001:db8::5"), User: "carol"},
		{IP: ip("192.168.0.9"), User: "dave"},
		{},
	}
	tests := []struct {
		flavor string
		want   []MapEntry
	}{
		{FlavorSendmail, []MapEntry{
			{"192.168.0", "RELAY"},
			{"connect:192.168.0", "REJECT"},
			{"spamford.com", "REJECT"},
			{"ok.spamford.com", "OK"},
			{"from:spammer@aol.com", "REJECT"},
			{"to:friend.example", "RELAY"},
			{"spam:abuse@", "FRIEND"},
			{"ipv6:2002:c0a8:0:0:0:0:0:1", "RELAY"},
			{"connect:ipv6:2002:c0a8:2", `ERROR:4.3.2:"451 Not now"`},
			{"skip.example", "SKIP"},
			{"ipv6:2001:db8", "RELAY"},
			{"ipv6:2001:db8:0:1", "RELAY"},
			{"greetpause:10.1", "5000"},
			{"connect:198.51.100.7", "RELAY"},
			{"connect:198.51.100.8", "RELAY"},
			{"connect:ipv6:2001:db8:0:0:0:0:0:5", "RELAY"},
			{"connect:192.168.0.9", "RELAY"},
		}},
		{FlavorPostfix, []MapEntry{
			{"192.168.0", "REJECT"}, // Connect: is looked up before the untagged key
			{"spamford.com", "REJECT"},
			{"ok.spamford.com", "DUNNO"},
			{"2002:c0a8::1", "OK"},
			{"2002:c0a8:2", "451 4.3.2 Not now"},
			{"skip.example", "DUNNO"},
			{"198.51.100.7", "OK"},
			{"198.51.100.8", "OK"},
			{"2001:db8::5", "OK"},
			{"192.168.0.9", "OK"},
		}},
		{"exim", nil},
	}
	for _, tt := range tests {
		got := Entries(rules, grants, tt.flavor)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Entries(%s):\n got %q\nwant %q", tt.flavor, got, tt.want)
		}
	}
	// A grant for a key a static rule already has leaves the rule alone.
	static, _ := ParseRulesString("Connect:198.51.100.7 REJECT\n198.51.100.8 OK\n")
	got := Entries(static, grants[:2], FlavorSendmail)
	want := []MapEntry{{"connect:198.51.100.7", "REJECT"}, {"198.51.100.8", "OK"}, {"connect:198.51.100.8", "RELAY"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sendmail dedup: got %q want %q", got, want)
	}
	got = Entries(static, grants[:2], FlavorPostfix)
	want = []MapEntry{{"198.51.100.7", "REJECT"}, {"198.51.100.8", "DUNNO"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("postfix dedup: got %q want %q", got, want)
	}
	if got := Entries(nil, nil, FlavorSendmail); len(got) != 0 {
		t.Errorf("empty mirror: %q", got)
	}
}

// recordingWriter is the test's MapWriter: the real one (acl/accessdb) is
// another package's job; this one records what the mirror asks for.
type recordingWriter struct {
	mu     sync.Mutex
	writes []mapWrite
	fail   int // fail this many writes first
}

type mapWrite struct {
	at      time.Time
	path    string
	entries []MapEntry
}

func (w *recordingWriter) WriteMap(path string, entries []MapEntry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail > 0 {
		w.fail--
		return errors.New("disk full")
	}
	w.writes = append(w.writes, mapWrite{at: time.Now(), path: path, entries: entries})
	return nil
}

func (w *recordingWriter) take() []mapWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.writes
	w.writes = nil
	return out
}

func keys(entries []MapEntry) string {
	var ks []string
	for _, e := range entries {
		ks = append(ks, e.Key+"="+e.Value)
	}
	return strings.Join(ks, " ")
}

func TestMirrorRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rules, err := ParseRulesString("192.168.0 RELAY\n")
		if err != nil {
			t.Fatal(err)
		}
		grants, err := NewGrants(GrantsConfig{TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		grants.LoginSucceeded("old", ip("10.0.0.1")) // restored before the mirror starts
		w := &recordingWriter{}
		var logs logBuffer
		m := NewMirror(MirrorConfig{
			Targets: []MirrorTarget{{Path: "/etc/mail/access.db", Flavor: FlavorSendmail}, {Path: "/etc/postfix/popgate.db", Flavor: FlavorPostfix}},
			Rules:   rules, Grants: grants, Writer: w, Logger: logs.logger(),
		})
		ctx, cancel := context.WithCancel(t.Context())
		runErr := make(chan error, 1)
		go func() { runErr <- m.Run(ctx) }()
		synctest.Wait()

		// Rebuild at start: both targets, static rules then live grants.
		got := w.take()
		if len(got) != 2 || got[0].path != "/etc/mail/access.db" || got[1].path != "/etc/postfix/popgate.db" ||
			keys(got[0].entries) != "192.168.0=RELAY connect:10.0.0.1=RELAY" || keys(got[1].entries) != "192.168.0=OK 10.0.0.1=OK" {
			t.Fatalf("start writes: %+v", got)
		}

		// Changes within MinInterval of the last write are coalesced into
		// one write per target, one second after the previous one.
		time.Sleep(200 * time.Millisecond)
		grants.LoginSucceeded("alice", ip("198.51.100.7"))
		grants.LoginSucceeded("bob", ip("198.51.100.8"))
		synctest.Wait()
		if got := w.take(); len(got) != 0 {
			t.Fatalf("wrote within MinInterval: %+v", got)
		}
		time.Sleep(800 * time.Millisecond)
		synctest.Wait()
		got = w.take()
		if len(got) != 2 || !got[0].at.Equal(start.Add(time.Second)) ||
			keys(got[0].entries) != "192.168.0=RELAY connect:10.0.0.1=RELAY connect:198.51.100.7=RELAY connect:198.51.100.8=RELAY" {
			t.Fatalf("coalesced writes: %+v", got)
		}

		// A change long after the last write is written at once.
		time.Sleep(5 * time.Second)
		grants.Revoke(ip("198.51.100.8"))
		synctest.Wait()
		got = w.take()
		if len(got) != 2 || !got[0].at.Equal(start.Add(6*time.Second)) ||
			keys(got[0].entries) != "192.168.0=RELAY connect:10.0.0.1=RELAY connect:198.51.100.7=RELAY" {
			t.Fatalf("revoke writes: %+v", got)
		}

		// The first grant expires at exactly start+10s and is gone from the
		// write made at that instant, though nothing else changed and the
		// grants' own expiry loop is not running.
		time.Sleep(time.Until(start.Add(10 * time.Second)))
		synctest.Wait()
		got = w.take()
		if len(got) != 2 || !got[0].at.Equal(start.Add(10*time.Second)) ||
			keys(got[0].entries) != "192.168.0=RELAY connect:198.51.100.7=RELAY" {
			t.Fatalf("expiry writes: %+v", got)
		}

		// The last grant expires at start+10.2s.
		time.Sleep(time.Second)
		synctest.Wait()
		got = w.take()
		if len(got) != 2 || !got[0].at.Equal(start.Add(11*time.Second)) || keys(got[0].entries) != "192.168.0=RELAY" {
			t.Fatalf("second expiry writes (coalesced to 1s after the last): %+v", got)
		}

		cancel()
		if err := <-runErr; err != nil {
			t.Fatal(err)
		}
		if got := w.take(); len(got) != 2 {
			t.Fatalf("final writes: %+v", got)
		}
		if err := grants.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMirrorRetriesFailedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		w := &recordingWriter{fail: 1}
		m := NewMirror(MirrorConfig{Targets: []MirrorTarget{{Path: "/a.db", Flavor: FlavorSendmail}}, Writer: w,
			MinInterval: 3 * time.Second, Logger: logs.logger()})
		ctx, cancel := context.WithCancel(t.Context())
		runErr := make(chan error, 1)
		start := time.Now()
		go func() { runErr <- m.Run(ctx) }()
		synctest.Wait()
		if got := w.take(); len(got) != 0 {
			t.Fatalf("failed write recorded: %+v", got)
		}
		if !strings.Contains(logs.String(), `msg="access map not written" path=/a.db err="acl: mirror /a.db: disk full"`) {
			t.Errorf("failure not logged: %s", logs.String())
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := w.take(); len(got) != 1 || !got[0].at.Equal(start.Add(3*time.Second)) {
			t.Fatalf("retry: %+v", got)
		}
		w.mu.Lock()
		w.fail = 1
		w.mu.Unlock()
		cancel()
		if err := <-runErr; err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("final write error not returned: %v", err)
		}
	})
}

func TestMirrorRunConfigErrors(t *testing.T) {
	for _, cfg := range []MirrorConfig{
		{Targets: []MirrorTarget{{Path: "/a", Flavor: "exim"}}, Writer: &recordingWriter{}},
		{Targets: []MirrorTarget{{Path: "/a", Flavor: FlavorSendmail}}},
	} {
		if err := NewMirror(cfg).Run(context.Background()); err == nil {
			t.Errorf("Run(%+v) accepted a bad configuration", cfg)
		}
	}
}

func ExampleEntries() {
	rules, _ := ParseRulesString("192.168.0 RELAY\nspamford.com REJECT\nok.spamford.com OK\n")
	grants := []Grant{{IP: netip.MustParseAddr("2001:db8::7"), User: "alice@example.com"}}
	for _, flavor := range []string{FlavorSendmail, FlavorPostfix} {
		for _, e := range Entries(rules, grants, flavor) {
			fmt.Printf("%s\t%s\t%s\n", flavor, e.Key, e.Value)
		}
	}
	// Output:
	// sendmail	192.168.0	RELAY
	// sendmail	spamford.com	REJECT
	// sendmail	ok.spamford.com	OK
	// sendmail	connect:ipv6:2001:db8:0:0:0:0:0:7	RELAY
	// postfix	192.168.0	OK
	// postfix	spamford.com	REJECT
	// postfix	ok.spamford.com	DUNNO
	// postfix	2001:db8::7	OK
}
