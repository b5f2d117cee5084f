package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/popgate/popgate/smtp"
)

// Config is popgate's whole configuration: one TOML file in which every key
// is optional. The doc tags are the reference documentation; `popgate
// config` prints them with the defaults, and docs/config.md is generated
// from the same source, so the two cannot drift.
type Config struct {
	Hostname string   `toml:"hostname" doc:"Name used in greeting banners and Received headers. Default: the machine's host name."`
	Domains  []string `toml:"domains" doc:"Local domains: mail for them is delivered into maildirs; anything else is relayed only when allowed."`
	DataDir  string   `toml:"data_dir" doc:"Directory for mail/<domain>/<user>/{cur,new,tmp}, queue/ and state/. Relative paths are relative to the working directory."`
	MailDir  string   `toml:"mail_dir" doc:"The maildir tree, <domain>/<user>/{cur,new,tmp}. Empty: <data_dir>/mail. Several instances may share it on one volume (NFS included; a POP3 session holds its mailbox with a lease file, see pop3.lock_lease) while each keeps its own data_dir for queue, state and TLS."`

	Log     LogConfig     `toml:"log"`
	Users   UsersConfig   `toml:"users"`
	TLS     TLSConfig     `toml:"tls"`
	POP3    POP3Config    `toml:"pop3"`
	SMTP    SMTPConfig    `toml:"smtp"`
	Relay   RelayConfig   `toml:"relay"`
	Queue   QueueConfig   `toml:"queue"`
	Metrics MetricsConfig `toml:"metrics"`
	Control ControlConfig `toml:"control"`
	Process ProcessConfig `toml:"process"`
	// Sendmail configures `popgate sendmail` (also run as sendmail, mailq,
	// newaliases) and the local socket and maildrop it hands mail to.
	Sendmail SendmailConfig `toml:"sendmail"`

	// Live lookups for a sendmail or Postfix beside popgate.
	Policy    PolicyConfig    `toml:"policy"`
	Socketmap SocketmapConfig `toml:"socketmap"`
}

// SendmailConfig configures local submission: programs that call
// sendmail(1) hand their mail to the server over a Unix socket, or leave
// it in a maildrop directory while the server is down.
type SendmailConfig struct {
	Socket       string   `toml:"socket" doc:"Unix socket, mode 0666, on which the server takes mail from local programs; it trusts only the caller's kernel credentials (SO_PEERCRED). Empty: <data_dir>/submit.sock (data_dir is then made searchable, o+x, so that every user can reach it)."`
	Maildrop     string   `toml:"maildrop" doc:"Directory, mode 1733, where sendmail leaves mail while the server is down; the server delivers it at start, as soon as a file is complete (inotify) and every minute. Empty: <data_dir>/maildrop."`
	TrustedUsers []string `toml:"trusted_users" doc:"Users who may set any envelope sender with -f, like sendmail's trusted users. root and the user the server runs as always may; others may too, but their message gets an X-Authentication-Warning header."`
}

// ProcessConfig says whom popgate runs as once its ports are bound.
type ProcessConfig struct {
	User  string `toml:"user" doc:"Started as root: after binding the listeners, switch to this user (name or uid) for good. Empty: stay who popgate was started as. Not needed under systemd (User=) or in the container image (USER)."`
	Group string `toml:"group" doc:"Group for process.user (name or gid). Empty: the user's primary group."`
}

// LogConfig selects how popgate logs.
type LogConfig struct {
	Format string `toml:"format" doc:"\"text\" or \"json\"."`
	Level  string `toml:"level" doc:"\"debug\", \"info\", \"warn\" or \"error\"."`
}

// UsersConfig names the users file and the aliases file.
type UsersConfig struct {
	File    string `toml:"file" doc:"Users file, one user a line: address:{SCHEME}hash (Dovecot passwd-file form). Empty: <data_dir>/users, created empty if missing."`
	Aliases string `toml:"aliases" doc:"Optional aliases file in sendmail aliases(5) syntax. Empty: no aliases."`
}

// TLSConfig names the certificate used by STLS, STARTTLS and the implicit
// TLS listeners.
type TLSConfig struct {
	Cert string `toml:"cert" doc:"PEM certificate chain. Empty (with key empty): a self-signed certificate is generated into <data_dir>/tls on first start."`
	Key  string `toml:"key" doc:"PEM private key for cert."`
}

// POP3Config configures the POP3 listeners.
type POP3Config struct {
	Listen             []string `toml:"listen" doc:"Plain POP3 listeners (port 110 style); they offer STLS."`
	ListenTLS          []string `toml:"listen_tls" doc:"Implicit-TLS POP3 listeners (port 995 style)."`
	AllowPlaintextAuth bool     `toml:"allow_plaintext_auth" doc:"Allow USER/PASS and AUTH before STLS from non-loopback clients. Loopback is always allowed."`
	IdleTimeout        Duration `toml:"idle_timeout" doc:"Close a session idle this long; nothing is deleted. RFC 1939 section 3 asks for at least 10 minutes."`
	MaxConnections     int      `toml:"max_connections" doc:"Concurrent POP3 sessions in total."`
	MaxConnectionsIP   int      `toml:"max_connections_per_ip" doc:"Concurrent POP3 sessions from one client address (an office behind NAT is one address)."`
	LockLease          Duration `toml:"lock_lease" doc:"How long a POP3 session's claim on its mailbox (<maildir>/popgate.lease) lasts unless renewed; it is renewed every third of this while the session lives. An instance killed with -9 leaves its mailboxes locked ([IN-USE]) for at most this long. Instances sharing mail_dir need clocks in step (NTP) to well within it."`
	EnableAPOP         bool     `toml:"enable_apop" doc:"Offer APOP to users whose password is stored {PLAIN}. Off by default."`
}

// SMTPConfig configures the SMTP listeners and their limits.
type SMTPConfig struct {
	Listen             []string `toml:"listen" doc:"MX listeners (port 25 style): mail for local domains from anyone, relay only when allowed."`
	Submission         []string `toml:"submission" doc:"Submission listeners (port 587 style): STARTTLS, then AUTH."`
	Submissions        []string `toml:"submissions" doc:"Implicit-TLS submission listeners (port 465 style)."`
	MaxMessageBytes    int64    `toml:"max_message_bytes" doc:"Largest message accepted, advertised with SIZE."`
	MaxRecipients      int      `toml:"max_recipients" doc:"Recipients per message."`
	MaxConnections     int      `toml:"max_connections" doc:"Concurrent SMTP sessions in total."`
	MaxConnectionsIP   int      `toml:"max_connections_per_ip" doc:"Concurrent SMTP sessions from one client address."`
	Timeout            Duration `toml:"timeout" doc:"Read and write timeout for each SMTP command and reply (RFC 5321 section 4.5.3.2 suggests 5 minutes)."`
	AllowPlaintextAuth bool     `toml:"allow_plaintext_auth" doc:"Allow AUTH before STARTTLS from non-loopback clients. Loopback is always allowed."`
	BareNewline        string   `toml:"bare_newline" doc:"A bare LF or bare CR (not part of CRLF) in a command or message: \"reject\" refuses it everywhere (500 5.5.2 for a command, 550 5.5.2 for a message, nothing of which is kept), as sendmail 8.18 and Postfix smtpd_forbid_bare_newline = reject do against SMTP smuggling. \"normalize\" accepts it from relay.trusted_networks and SMTP-AUTH-authenticated sessions (old local scripts): a bare LF becomes CRLF, a bare CR in a message becomes a space (never a new header line); everybody else is still refused. In both modes only CRLF.CRLF ends DATA."`
	MinFreeBytes       int64    `toml:"min_free_bytes" doc:"Free space (octets) that the filesystems of the maildirs and the queue must keep beyond a message's announced SIZE; below it MAIL FROM gets 452 4.3.1, like Postfix's queue_minfree. 0: 1.5 times max_message_bytes."`
	SenderCheck        string   `toml:"sender_check" doc:"Which MAIL FROM an authenticated session may use (553 5.7.1 otherwise): \"owner\" (the user's own address or an alias that resolves to it), \"local-domains\" (any address in domains), \"any\" (no check, as sendmail did). The null sender <> is always allowed, for bounces and read receipts."`
}

// RelayConfig decides who may relay, and how the decision is mirrored for
// a sendmail or Postfix running beside popgate.
type RelayConfig struct {
	PopTTL          Duration       `toml:"pop_ttl" doc:"How long a successful POP3 login lets its client address relay."`
	AccessFile      string         `toml:"access_file" doc:"sendmail-style static rules, e.g. /etc/mail/access. Empty: none."`
	TrustedNetworks []Prefix       `toml:"trusted_networks" doc:"Networks that may always relay (like Postfix mynetworks). [] makes loopback count as remote."`
	NeverGrant      []Prefix       `toml:"never_grant" doc:"Networks a POP3 login never authorises (NAT gateways, webmail, proxies)."`
	ProxyProtocol   []Prefix       `toml:"proxy_protocol" doc:"Trusted load balancers whose PROXY v1/v2 header gives the client address."`
	Mirror          []MirrorConfig `toml:"mirror" doc:"Map files kept in step with the static rules and live grants."`
	// Shared mode: several instances behind a balancer see one set of grants.
	GrantsURL          string `toml:"grants_url" doc:"Redis or Valkey (6.2 or later) holding the grants of every instance: redis://[user[:password]@]host:port/db, or rediss://… for TLS. Empty: grants in memory, this instance only."`
	GrantsPasswordFile string `toml:"grants_password_file" doc:"File whose first line is the password for relay.grants_url (replaces any in the URL, keeps it out of the configuration). Empty: the URL's, if any."`
}

// MirrorConfig is one access.db-style output.
type MirrorConfig struct {
	Path   string `toml:"path" doc:"The map file itself, e.g. /etc/mail/access.db; for cdb and lmdb the name ends in .cdb or .lmdb (cdb:/etc/postfix/popgate reads /etc/postfix/popgate.cdb)."`
	Flavor string `toml:"flavor" doc:"\"sendmail\" (value RELAY, IPv6 keys ipv6:full-form) or \"postfix\" (value OK, compressed IPv6)."`
	Format string `toml:"format" doc:"\"hash\" (Berkeley DB 5.x hash, rewritten in place), \"hash185\" (DB 1.85 hash, BSD base systems), \"cdb\" (Postfix cdb:, sendmail 8.16+ cdb) or \"lmdb\" (Postfix lmdb:; machine byte order); cdb and lmdb files are replaced by rename."`
}

// QueueConfig configures outbound delivery.
type QueueConfig struct {
	Smarthost string   `toml:"smarthost" doc:"host:port to relay all outbound mail through. Empty: deliver to the recipient domain's MX."`
	MinRetry  Duration `toml:"min_retry" doc:"First retry after a temporary failure; the interval doubles each time."`
	MaxAge    Duration `toml:"max_age" doc:"Give up and bounce a message still undelivered after this long."`

	Routes map[string]string `toml:"routes" doc:"Per-domain routes, like sendmail's mailertable: { \"example.net\" = \"mx.example.net:25\", \".example.org\" = \"hub.example.org:2525\" }. A key is that domain only; \".domain\" is every domain below it. The host:port is dialled as it is (no MX lookup) and wins over smarthost."`
}

// PolicyConfig configures the Postfix policy delegation server.
type PolicyConfig struct {
	Listen []string `toml:"listen" doc:"Postfix policy delegation server (check_policy_service): \"host:port\" or \"unix:/path\". It answers OK for a client with a live POP3 grant or a RELAY rule, DUNNO otherwise, and the rule's reply for REJECT/ERROR rules. Empty: off."`
}

// SocketmapConfig configures the socket map server.
type SocketmapConfig struct {
	Listen []string `toml:"listen" doc:"Socket map server (sendmail's socket map class, Postfix's socketmap: table) answering the map \"access\" with the sendmail mirror's keys and values, live: \"host:port\" or \"unix:/path\". Empty: off."`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `toml:"listen" doc:"Address for Prometheus /metrics, e.g. 127.0.0.1:9154. Empty: off."`
}

// ControlConfig configures the local control socket used by `popgate
// queue`, `grants`, `report` and `health`.
type ControlConfig struct {
	Socket string `toml:"socket" doc:"Unix socket for the control commands, mode 0600. Empty: <data_dir>/state/control.sock."`
}

// defaultConfig is the embedded default: everything on loopback, data in
// ./popgate-data, so that `popgate serve` works with no file at all.
func defaultConfig() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Config{
		Hostname: host,
		Domains:  []string{"localhost"},
		DataDir:  "./popgate-data",
		Log:      LogConfig{Format: "text", Level: "info"},
		POP3: POP3Config{
			Listen:         []string{"127.0.0.1:1110"},
			ListenTLS:      []string{},
			IdleTimeout:    Duration{10 * time.Minute},
			LockLease:      Duration{time.Minute},
			MaxConnections: 1000,
			// A small office behind NAT shares one address: every mail
			// client of the office counts against this cap.
			MaxConnectionsIP: 100,
		},
		SMTP: SMTPConfig{
			Listen:           []string{"127.0.0.1:2525"},
			Submission:       []string{"127.0.0.1:2587"},
			Submissions:      []string{},
			MaxMessageBytes:  26214400,
			MaxRecipients:    100,
			MaxConnections:   500,
			MaxConnectionsIP: 50, // Postfix's smtpd_client_connection_count_limit
			Timeout:          Duration{5 * time.Minute},
			BareNewline:      "reject",
			SenderCheck:      string(smtp.SenderCheckOwner),
		},
		Relay: RelayConfig{
			PopTTL:          Duration{15 * time.Minute},
			TrustedNetworks: []Prefix{mustPrefix("127.0.0.1/32"), mustPrefix("::1/128")},
			NeverGrant:      []Prefix{},
			ProxyProtocol:   []Prefix{},
			Mirror:          []MirrorConfig{},
		},
		Sendmail: SendmailConfig{TrustedUsers: []string{}},
		Queue: QueueConfig{
			MinRetry: Duration{5 * time.Minute},
			MaxAge:   Duration{120 * time.Hour},
			Routes:   map[string]string{},
		},
		Policy:    PolicyConfig{Listen: []string{}},
		Socketmap: SocketmapConfig{Listen: []string{}},
	}
}

// configError is an error in a configuration file, located at a key.
type configError struct {
	file string
	line int // 0 when unknown
	key  string
	msg  string
}

func (e *configError) Error() string {
	loc := e.file
	if e.line > 0 {
		loc = fmt.Sprintf("%s:%d", e.file, e.line)
	}
	if e.key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.key, e.msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.msg)
}

// loadConfig reads path over the defaults; an empty path gives the
// embedded default. Every problem is reported as a *configError naming the
// file, the line where known, and the key.
func loadConfig(path string) (*Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, cfg.validate("(embedded default)", nil)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &configError{file: path, msg: fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}
	}
	return parseConfig(data, path)
}

// parseConfig decodes a configuration file's text over the defaults and
// validates it; path only names the file in errors.
func parseConfig(data []byte, path string) (*Config, error) {
	cfg := defaultConfig()
	pos := keyLines(data)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &configError{file: path, line: pe.Position.Line, key: pe.LastKey, msg: pe.Message}
		}
		return nil, &configError{file: path, msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		return nil, &configError{file: path, line: pos[k], key: k, msg: "unknown key"}
	}
	if cfg.DataDir != "" && !filepath.IsAbs(cfg.DataDir) && !strings.HasPrefix(cfg.DataDir, ".") {
		cfg.DataDir = "./" + cfg.DataDir
	}
	if cfg.MailDir != "" && !filepath.IsAbs(cfg.MailDir) && !strings.HasPrefix(cfg.MailDir, ".") {
		cfg.MailDir = "./" + cfg.MailDir
	}
	return cfg, cfg.validate(path, pos)
}

// minFreeBytes is the free-space reserve in effect.
func (c *Config) minFreeBytes() int64 {
	if c.SMTP.MinFreeBytes > 0 {
		return c.SMTP.MinFreeBytes
	}
	return c.SMTP.MaxMessageBytes + c.SMTP.MaxMessageBytes/2
}

// usersFile is the users file in effect.
func (c *Config) usersFile() string {
	if c.Users.File != "" {
		return c.Users.File
	}
	return filepath.Join(c.DataDir, "users")
}

// mailDir is the maildir tree in effect.
func (c *Config) mailDir() string {
	if c.MailDir != "" {
		return c.MailDir
	}
	return filepath.Join(c.DataDir, "mail")
}

// controlSocket is the control socket path in effect.
func (c *Config) controlSocket() string {
	if c.Control.Socket != "" {
		return c.Control.Socket
	}
	return filepath.Join(c.DataDir, "state", "control.sock")
}

// sendmailSocket is the local submission socket in effect.
func (c *Config) sendmailSocket() string {
	if c.Sendmail.Socket != "" {
		return c.Sendmail.Socket
	}
	return filepath.Join(c.DataDir, "submit.sock")
}

// maildropDir is the maildrop directory in effect.
func (c *Config) maildropDir() string {
	if c.Sendmail.Maildrop != "" {
		return c.Sendmail.Maildrop
	}
	return filepath.Join(c.DataDir, "maildrop")
}

// keyLines maps each dotted key of a TOML text to the line that sets it,
// so that errors found after decoding can still point at the file. It
// understands what popgate's files use: [table], [[array]] and key = value
// lines; a miss only costs the line number in a message.
func keyLines(data []byte) map[string]int {
	pos := map[string]int{}
	table := ""
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[["):
			table = strings.TrimSpace(strings.Trim(strings.SplitN(line, "]]", 2)[0], "[ "))
		case strings.HasPrefix(line, "["):
			table = strings.TrimSpace(strings.Trim(strings.SplitN(line, "]", 2)[0], "[ "))
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			k = strings.Trim(strings.TrimSpace(k), `"`)
			if table != "" {
				k = table + "." + k
			}
			if _, dup := pos[k]; !dup {
				pos[k] = i + 1
			}
		}
		if _, dup := pos[table]; table != "" && !dup {
			pos[table] = i + 1
		}
	}
	return pos
}

// Duration is a time.Duration written as a Go duration string ("15m").
type Duration struct{ time.Duration }

// UnmarshalText parses a duration such as "90s" or "15m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (use a number with a unit, e.g. \"15m\" or \"30s\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in Go's form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Prefix is a network in CIDR form; a bare address means that one host.
type Prefix struct{ netip.Prefix }

func mustPrefix(s string) Prefix {
	var p Prefix
	if err := p.UnmarshalText([]byte(s)); err != nil {
		panic(err)
	}
	return p
}

// UnmarshalText parses "192.0.2.0/24", "2001:db8::/32" or a bare address.
func (p *Prefix) UnmarshalText(b []byte) error {
	s := string(b)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("bad network %q (want CIDR such as 192.0.2.0/24, or an address)", s)
		}
		p.Prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		return nil
	}
	v, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("bad network %q (want CIDR such as 192.0.2.0/24)", s)
	}
	p.Prefix = v.Masked()
	return nil
}

// MarshalText writes the network in CIDR form.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.Prefix.String()), nil }

// prefixes unwraps a configuration list.
func prefixes(ps []Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Prefix
	}
	return out
}

// readPasswordFile returns the first line of a password file, without its
// line ending.
func readPasswordFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s: the first line is empty", path)
	}
	return line, nil
}
