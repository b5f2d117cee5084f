package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/config.md from the config struct")

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigGood(t *testing.T) {
	dir := t.TempDir()
	users := writeFile(t, dir, "users", "")
	p := writeFile(t, dir, "popgate.toml", `
hostname = "mail.example.com"
domains  = ["example.com", "example.org"]
data_dir = "`+dir+`/data"

[users]
file = "`+users+`"

[pop3]
listen = ["127.0.0.1:0"]
listen_tls = []

[relay]
pop_ttl = "90s"
trusted_networks = []
never_grant = ["192.0.2.0/24", "2001:db8::1"]

[[relay.mirror]]
path = "`+dir+`/access.db"
flavor = "sendmail"
format = "hash"

[[relay.mirror]]
path = "`+dir+`/postfix-access.db"
flavor = "postfix"
format = "hash"

[[relay.mirror]]
path = "`+dir+`/popgate.cdb"
flavor = "sendmail"
format = "cdb"

[[relay.mirror]]
path = "`+dir+`/popgate.lmdb"
flavor = "postfix"
format = "lmdb"

[queue]
smarthost = "smtp.example.net:587"
min_retry = "1s"
`)
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "mail.example.com" || len(cfg.Domains) != 2 {
		t.Errorf("hostname/domains = %q %v", cfg.Hostname, cfg.Domains)
	}
	if cfg.Relay.PopTTL.Duration != 90*time.Second {
		t.Errorf("pop_ttl = %v, want 90s", cfg.Relay.PopTTL)
	}
	if len(cfg.Relay.TrustedNetworks) != 0 {
		t.Errorf("trusted_networks = %v, want empty (explicit [] overrides the default)", cfg.Relay.TrustedNetworks)
	}
	if got := cfg.Relay.NeverGrant[1].String(); got != "2001:db8::1/128" {
		t.Errorf("bare address parsed as %s, want a /128", got)
	}
	if len(cfg.Relay.Mirror) != 4 || cfg.Relay.Mirror[1].Flavor != "postfix" || cfg.Relay.Mirror[3].Format != "lmdb" {
		t.Errorf("mirrors = %+v", cfg.Relay.Mirror)
	}
	// Keys not in the file keep their defaults.
	if cfg.SMTP.Listen[0] != "127.0.0.1:2525" || cfg.Queue.MaxAge.Duration != 120*time.Hour {
		t.Errorf("defaults lost: smtp.listen=%v queue.max_age=%v", cfg.SMTP.Listen, cfg.Queue.MaxAge)
	}
}

func TestConfigBad(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, toml string
		want       string // substring of the error, which must also name file:line
	}{
		{"unknown key", "hostname = \"x\"\n\n[pop3]\nlisen = [\"127.0.0.1:1\"]\n", ":4: pop3.lisen: unknown key"},
		{"unknown table", "[smpt]\nlisten = []\n", ":1: smpt: unknown key"},
		{"wrong type", "[smtp]\nmax_recipients = \"many\"\n", "line 2"},
		{"bad duration", "[relay]\npop_ttl = \"15 minutes\"\n", `:2: relay.pop_ttl: bad duration "15 minutes"`},
		{"zero ttl", "[relay]\npop_ttl = \"0s\"\n", ":2: relay.pop_ttl: must be positive"},
		{"bad cidr", "[relay]\ntrusted_networks = [\"10.0.0.0/33\"]\n", `:2: relay.trusted_networks: bad network "10.0.0.0/33"`},
		{"bad ip", "[relay]\nnever_grant = [\"10.0.0.300\"]\n", `:2: relay.never_grant: bad network "10.0.0.300"`},
		{"syntax", "[pop3\n", ":2: expected '.' or ']'"},
		{"listen conflict", "[pop3]\nlisten = [\"127.0.0.1:2525\"]\n", ":2: pop3.listen: 127.0.0.1:2525 is also used by"},
		{"listen not hostport", "[smtp]\nlisten = [\"127.0.0.1\"]\n", `:2: smtp.listen: "127.0.0.1" is not host:port`},
		{"listen hostname", "[smtp]\nsubmission = [\"mail.example.com:587\"]\n", "listen on an IP address"},
		{"unreadable users", "[users]\nfile = \"/nonexistent/users\"\n", ":2: users.file: cannot read /nonexistent/users"},
		{"unreadable access", "[relay]\naccess_file = \"/nonexistent/access\"\n", ":2: relay.access_file: cannot read"},
		{"short idle", "[pop3]\nidle_timeout = \"1m\"\n", ":2: pop3.idle_timeout: 1m0s is shorter than the 10 minutes"},
		{"bad flavor", "[[relay.mirror]]\npath = \"" + dir + "/a.db\"\nflavor = \"exim\"\nformat = \"hash\"\n", `:3: relay.mirror.flavor: relay.mirror[0]: "exim"`},
		{"bad format", "[[relay.mirror]]\npath = \"" + dir + "/a.db\"\nflavor = \"postfix\"\nformat = \"btree\"\n", `relay.mirror.format`},
		{"cdb name", "[[relay.mirror]]\npath = \"" + dir + "/popgate\"\nflavor = \"postfix\"\nformat = \"cdb\"\n", `relay.mirror.path: relay.mirror[0]: cdb maps are files named *.cdb`},
		{"lmdb name", "[[relay.mirror]]\npath = \"" + dir + "/popgate.db\"\nflavor = \"postfix\"\nformat = \"lmdb\"\n", `lmdb maps are files named *.lmdb`},
		{"sendmail lmdb", "[[relay.mirror]]\npath = \"" + dir + "/access.lmdb\"\nflavor = \"sendmail\"\nformat = \"lmdb\"\n", `sendmail has no lmdb map type`},
		{"mirror dir missing", "[[relay.mirror]]\npath = \"/nonexistent/dir/a.db\"\nflavor = \"postfix\"\nformat = \"hash\"\n", "directory of /nonexistent/dir/a.db does not exist"},
		{"no domains", "domains = []\n", ":1: domains: at least one local domain"},
		{"sendmail socket too long", "[sendmail]\nsocket = \"/" + strings.Repeat("s", 120) + "\"\n", ":2: sendmail.socket: /sss"},
		{"trusted user", "[sendmail]\ntrusted_users = [\"a b\"]\n", `:2: sendmail.trusted_users: "a b" is not a user name`},
		{"bad domain", "domains = [\"user@example.com\"]\n", `"user@example.com" is not a domain name`},
		{"cert without key", "[tls]\ncert = \"/etc/hosts\"\n", ":2: tls.cert: cert and key must be set together"},
		{"smarthost", "[queue]\nsmarthost = \"relay.example.net\"\n", `:2: queue.smarthost: "relay.example.net" is not host:port`},
		{"max age < retry", "[queue]\nmin_retry = \"2h\"\nmax_age = \"1h\"\n", "queue.max_age: 1h0m0s is shorter than queue.min_retry"},
		{"negative reserve", "[smtp]\nmin_free_bytes = -1\n", ":2: smtp.min_free_bytes: must not be negative"},
		{"sender check", "[smtp]\nsender_check = \"nobody\"\n", `:2: smtp.sender_check: "nobody": want "owner"`},
		{"empty sender check", "[smtp]\nsender_check = \"\"\n", `:2: smtp.sender_check: ""`},
		{"log format", "[log]\nformat = \"xml\"\n", `:2: log.format: "xml"`},
		{"bare newline", "[smtp]\nbare_newline = \"fix\"\n", `:2: smtp.bare_newline: "fix"`},
		{"policy relative unix", "[policy]\nlisten = [\"unix:policy.sock\"]\n", `:2: policy.listen: "unix:policy.sock": a unix socket needs an absolute path`},
		{"policy not hostport", "[policy]\nlisten = [\"9998\"]\n", `:2: policy.listen: "9998" is not host:port`},
		{"socketmap conflict", "[socketmap]\nlisten = [\"127.0.0.1:2525\"]\n", "127.0.0.1:2525 is also used by"},
		{"unix on pop3", "[pop3]\nlisten = [\"unix:/run/pop3.sock\"]\n", `pop3.listen: "unix:/run/pop3.sock": listen on an IP address`},
		{"route key", "[queue]\nroutes = { \"Example.NET\" = \"mx.example.net:25\" }\n", `:2: queue.routes: route "Example.NET": want a lowercase domain`},
		{"route value", "[queue.routes]\n\".example.org\" = \"hub.example.org\"\n", `queue.routes: route .example.org: "hub.example.org" is not host:port`},
		{"no listeners", "[pop3]\nlisten = []\n[smtp]\nlisten = []\nsubmission = []\n", "no listeners at all"},
		{"grants url scheme", "[relay]\ngrants_url = \"http://127.0.0.1:6379\"\n", `:2: relay.grants_url: scheme "http": want redis:// or rediss://`},
		{"grants url db", "[relay]\ngrants_url = \"redis://127.0.0.1:6379/zero\"\n", `:2: relay.grants_url: database "zero": want a number, 0 or more`},
		{"grants url query", "[relay]\ngrants_url = \"redis://127.0.0.1:6379/0?protocol=2\"\n", ":2: relay.grants_url: query parameters are not supported"},
		{"grants url no host", "[relay]\ngrants_url = \"redis:///0\"\n", ":2: relay.grants_url: no host"},
		{"grants password alone", "[relay]\ngrants_password_file = \"/etc/hosts\"\n", ":2: relay.grants_password_file: set without relay.grants_url"},
		{"grants password unreadable", "[relay]\ngrants_url = \"redis://127.0.0.1:6379/0\"\ngrants_password_file = \"/nonexistent/pw\"\n", ":3: relay.grants_password_file: cannot read /nonexistent/pw"},
		{"grants password empty", "[relay]\ngrants_url = \"rediss://redis.example.net:6380/1\"\ngrants_password_file = \"" + writeFile(t, dir, "empty-pw", "\nsecond line\n") + "\"\n", "the first line is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".toml", tc.toml)
			_, err := loadConfig(p)
			if err == nil {
				t.Fatalf("loadConfig accepted:\n%s", tc.toml)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
				t.Errorf("error = %q\nwant it to start with the file name and contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigMissingFile(t *testing.T) {
	_, err := loadConfig("/nonexistent/popgate.toml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/popgate.toml: cannot read: no such file or directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.toml", "domains = [\"example.com\"]\n")
	bad := writeFile(t, dir, "bad.toml", "[relay]\npop_ttl = \"soon\"\n")
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	if code := run(context.Background(), e, []string{"check", "--config", good}); code != 0 {
		t.Fatalf("check good: exit %d, stderr %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "configuration ok") || !strings.Contains(out.String(), "example.com") {
		t.Errorf("summary = %q", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), e, []string{"check", "--config", bad}); code != 1 {
		t.Fatalf("check bad: exit %d, want 1", code)
	}
	if want := bad + `:2: relay.pop_ttl: bad duration "soon"`; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr = %q, want %q", errb.String(), want)
	}
	errb.Reset()
	if code := run(context.Background(), e, []string{"check", "--bogus"}); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2 (usage)", code)
	}
}

// TestConfigDocIsCurrent keeps docs/config.md equal to what the config
// struct says; run `go test ./cmd/popgate -run ConfigDoc -update-docs` after
// changing a key.
func TestConfigDocIsCurrent(t *testing.T) {
	cfg := defaultConfig()
	cfg.Hostname = "mail.example.com"
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\nEvery key of popgate's TOML configuration, with its default. " +
		"`popgate config` prints the same for the configuration in effect (the default `hostname` is the machine's host name).\n\n```toml\n")
	if err := writeConfigDoc(&b, cfg); err != nil {
		t.Fatal(err)
	}
	b.WriteString("```\n")
	const path = "../../docs/config.md"
	if *updateDocs {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("docs/config.md is out of date (err %v): run go test ./cmd/popgate -run ConfigDoc -update-docs", err)
	}
	// The documented defaults must load back to the same configuration.
	_, body, _ := strings.Cut(b.String(), "```toml\n")
	body, _, _ = strings.Cut(body, "```")
	p := writeFile(t, t.TempDir(), "doc.toml", body)
	back, err := loadConfig(p)
	if err != nil {
		t.Fatalf("documented defaults do not load: %v", err)
	}
	var again bytes.Buffer
	if err := writeConfigDoc(&again, back); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	_ = writeConfigDoc(&first, cfg)
	if again.String() != first.String() {
		t.Errorf("defaults do not round-trip through the documented file")
	}
}

func TestCheckParsesNamedFiles(t *testing.T) {
	cases := []struct {
		name, key, content, want string
	}{
		{"users", "[users]\nfile", "alice@example.com:{PLAIN}x\nbroken line\n", "line 2"},
		{"users-scheme", "[users]\nfile", "alice@example.com:{NOPE}x\n", "line 1"},
		{"aliases", "[users]\naliases", "postmaster root\n", "line 1: missing ':'"},
		{"access", "[relay]\naccess_file", "192.168.0 RELAY\nspamford.com MAYBE\n", "line 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := writeFile(t, dir, tc.name, tc.content)
			p := writeFile(t, dir, "popgate.toml", "data_dir = \""+dir+"\"\n"+tc.key+" = \""+f+"\"\n")
			var out, errb bytes.Buffer
			code := run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{"check", "--config", p})
			if code != 1 || !strings.Contains(errb.String(), tc.want) || !strings.Contains(errb.String(), f) {
				t.Errorf("exit %d, stderr %q; want 1 and %q naming %s", code, errb.String(), tc.want, f)
			}
		})
	}
}

// FuzzParseConfig: any file text gives a configuration or a located
// error, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("hostname = \"mx.example.com\"\ndomains = [\"example.com\"]\n[relay]\npop_ttl = \"90s\"\ntrusted_networks = []\n"))
	f.Add([]byte("[[relay.mirror]]\npath = \"/tmp/x.db\"\nflavor = \"postfix\"\nformat = \"hash\"\n"))
	f.Add([]byte("[pop3]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\nidle_timeout = \"10m\"\n"))
	f.Add([]byte("[smtp]\nmax_message_bytes = -1\n[queue]\nsmarthost = \"a:b:c\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data, "fuzz.toml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if cfg.Relay.PopTTL.Duration <= 0 || len(cfg.Domains) == 0 {
			t.Fatalf("accepted an invalid configuration: %+v", cfg)
		}
	})
}

// TestCheckReadsCDBAndLMDBMirrors: `popgate check` reads an existing cdb
// or lmdb mirror in its configured format and names a corrupt one.
func TestCheckReadsCDBAndLMDBMirrors(t *testing.T) {
	for _, format := range []string{"cdb", "lmdb"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "popgate."+format)
			p := writeFile(t, dir, "popgate.toml", "data_dir = \""+dir+"\"\n[[relay.mirror]]\npath = \""+path+
				"\"\nflavor = \"postfix\"\nformat = \""+format+"\"\n")
			check := func() (int, string) {
				var out, errb bytes.Buffer
				code := run(context.Background(), &env{stdout: &out, stderr: &errb}, []string{"check", "--config", p})
				return code, errb.String()
			}
			if _, _, err := runAccess(t, "192.0.2.7 OK\n", false, "make", path); err != nil {
				t.Fatal(err)
			}
			if code, stderr := check(); code != 0 {
				t.Fatalf("check of a good %s mirror: exit %d\n%s", format, code, stderr)
			}
			if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 8192), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, stderr := check(); code != 1 || !strings.Contains(stderr, path) || !strings.Contains(stderr, "corrupt") {
				t.Errorf("check of a corrupt %s mirror: exit %d, stderr %q", format, code, stderr)
			}
		})
	}
}

// TestSubcommandHelp: -h and --help list a subcommand's flags on standard
// output and exit 0; an unknown flag is still a usage error (exit 2).
func TestSubcommandHelp(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"import", "passwd", "-h"}, {"check", "--help"}} {
		stdout, stderr, code := runPopgate(t, args...)
		if code != 0 || !strings.Contains(stdout, "-config") || stderr != "" {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want 0 and the flag list", args, code, stdout, stderr)
		}
	}
	if _, stderr, code := runPopgate(t, "check", "--bogus"); code != 2 || !strings.Contains(stderr, "bogus") {
		t.Errorf("unknown flag: code %d, stderr %q; want 2", code, stderr)
	}
}

// TestConfigGrantsURL: a shared store with its password in a file loads,
// and the password is the file's first line without its line ending.
func TestConfigGrantsURL(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "pa:ss word\r\nignored\n")
	p := writeFile(t, dir, "shared.toml", "[relay]\ngrants_url = \"rediss://popgate@redis.example.net:6380/2\"\ngrants_password_file = \""+pw+"\"\n")
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Relay.GrantsURL != "rediss://popgate@redis.example.net:6380/2" {
		t.Errorf("grants_url = %q", cfg.Relay.GrantsURL)
	}
	if got, err := readPasswordFile(cfg.Relay.GrantsPasswordFile); err != nil || got != "pa:ss word" {
		t.Errorf("password = %q, %v", got, err)
	}
	if d := defaultConfig(); d.Relay.GrantsURL != "" {
		t.Errorf("default grants_url = %q, want in memory", d.Relay.GrantsURL)
	}
}
