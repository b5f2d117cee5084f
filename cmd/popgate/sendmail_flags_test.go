package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSendmailArgs(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		args []string
		want sendmailOpts
	}{
		{nil, sendmailOpts{}},
		{[]string{"alice"}, sendmailOpts{rcpts: []string{"alice"}}},
		// cron (Debian): sendmail -FCronDaemon -i -B8BITMIME -oem root
		{[]string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			sendmailOpts{fullName: "CronDaemon", ignoreDots: true, rcpts: []string{"root"}}},
		// PHP mail(): sendmail -t -i
		{[]string{"-t", "-i"}, sendmailOpts{extract: true, ignoreDots: true}},
		{[]string{"-ti"}, sendmailOpts{extract: true, ignoreDots: true}},
		// mailx: sendmail -i -- rcpt; git send-email: sendmail -i -f from rcpt...
		{[]string{"-i", "--", "-odd-name"}, sendmailOpts{ignoreDots: true, rcpts: []string{"-odd-name"}}},
		{[]string{"-oi", "-f", "me@example.com", "a", "b"},
			sendmailOpts{ignoreDots: true, from: s("me@example.com"), rcpts: []string{"a", "b"}}},
		{[]string{"-fme@example.com", "a"}, sendmailOpts{from: s("me@example.com"), rcpts: []string{"a"}}},
		{[]string{"-f", "<>", "a"}, sendmailOpts{from: s(""), rcpts: []string{"a"}}},
		{[]string{"-r", "<x@example.com>", "a"}, sendmailOpts{from: s("x@example.com"), rcpts: []string{"a"}}},
		{[]string{"-F", "Full Name", "a"}, sendmailOpts{fullName: "Full Name", rcpts: []string{"a"}}},
		{[]string{"-bm", "-v", "a"}, sendmailOpts{verbose: true, rcpts: []string{"a"}}},
		{[]string{"-bs"}, sendmailOpts{mode: modeSMTP}},
		{[]string{"-b", "p"}, sendmailOpts{mode: modeQueueList}},
		{[]string{"-bi"}, sendmailOpts{mode: modeAliases}},
		{[]string{"-I"}, sendmailOpts{mode: modeAliases}},
		{[]string{"-q"}, sendmailOpts{mode: modeFlush}},
		{[]string{"-q30m"}, sendmailOpts{mode: modeFlush}},
		{[]string{"-odi", "-odb", "-oQ/var/spool", "-N", "never", "-R", "hdrs", "-V", "envid", "-X", "/tmp/log", "-L", "tag", "-h", "5", "-C", "/etc/mail/sendmail.cf", "-G", "-U", "-m", "-n", "-c", "-s", "-T", "a"},
			sendmailOpts{rcpts: []string{"a"}}},
		{[]string{"-O", "IgnoreDots=true", "a"}, sendmailOpts{ignoreDots: true, rcpts: []string{"a"}}},
		{[]string{"--config", "/etc/p.toml", "-t"}, sendmailOpts{config: "/etc/p.toml", extract: true}},
		{[]string{"--config=/etc/p.toml", "a"}, sendmailOpts{config: "/etc/p.toml", rcpts: []string{"a"}}},
		// Options end at the first recipient, as in sendmail.
		{[]string{"a", "-t"}, sendmailOpts{rcpts: []string{"a", "-t"}}},
	}
	for _, tt := range tests {
		got, err := parseSendmailArgs(tt.args)
		if err != nil {
			t.Errorf("parse %q: %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("parse %q:\n got %+v\nwant %+v", tt.args, *got, tt.want)
		}
	}
}

func TestParseSendmailArgsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-k"}, "unknown option -k"},
		{[]string{"-tk"}, "unknown option -k"},
		{[]string{"--verbose"}, `unknown option "--verbose"`},
		{[]string{"-f"}, "-f needs an argument"},
		{[]string{"-F"}, "-F needs an argument"},
		{[]string{"-o"}, "-o needs an argument"},
		{[]string{"--config"}, "--config needs a file"},
		{[]string{"-bd"}, "popgate serve"},
		{[]string{"-bt"}, "not supported"},
		{[]string{"-bv", "a"}, "not supported"},
	}
	for _, tt := range tests {
		_, err := parseSendmailArgs(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse %q: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestSendmailArgs(t *testing.T) {
	tests := []struct {
		argv0 string
		args  []string
		want  []string
	}{
		{"/usr/sbin/sendmail", []string{"-t", "-i"}, []string{"sendmail", "-t", "-i"}},
		{"sendmail", nil, []string{"sendmail"}},
		{"/usr/bin/mailq", nil, []string{"sendmail", "-bp"}},
		{"/usr/bin/newaliases", []string{"--config", "x"}, []string{"sendmail", "-bi", "--config", "x"}},
		{"/usr/sbin/popgate", []string{"serve"}, []string{"serve"}},
		{"./popgate", []string{"sendmail", "a"}, []string{"sendmail", "a"}},
		{"/usr/lib/sendmail.d/other", []string{"x"}, []string{"x"}},
	}
	for _, tt := range tests {
		if got := sendmailArgs(tt.argv0, tt.args); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("sendmailArgs(%q, %q) = %q, want %q", tt.argv0, tt.args, got, tt.want)
		}
	}
}

func FuzzParseSendmailArgs(f *testing.F) {
	f.Add("-t\x00-i")
	f.Add("-FCron Daemon\x00-oem\x00root")
	f.Add("-f\x00<>\x00--\x00a")
	f.Add("-q1h\x00-bs")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		o, err := parseSendmailArgs(args)
		if err != nil {
			return
		}
		if len(o.rcpts) > len(args) {
			t.Fatalf("more recipients than arguments: %q -> %q", args, o.rcpts)
		}
	})
}
