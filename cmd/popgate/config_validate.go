package main

// Validation of a decoded configuration: what TOML decoding cannot check.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/mapfile"
	"github.com/popgate/popgate/smtp"
	"github.com/popgate/popgate/smtp/queue"
)

// validate checks what decoding cannot: values that parse but make no
// sense, conflicting listeners and unreadable files.
func (c *Config) validate(file string, pos map[string]int) error {
	fail := func(key, format string, args ...any) error {
		return &configError{file: file, line: pos[key], key: key, msg: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(c.Hostname) == "" || strings.ContainsAny(c.Hostname, " \t\r\n") {
		return fail("hostname", "must be a host name without spaces")
	}
	if len(c.Domains) == 0 {
		return fail("domains", "at least one local domain is needed")
	}
	for _, d := range c.Domains {
		if d == "" || strings.ContainsAny(d, " \t\r\n@/[]") {
			return fail("domains", "%q is not a domain name", d)
		}
	}
	if c.DataDir == "" {
		return fail("data_dir", "must not be empty")
	}
	if c.POP3.LockLease.Duration < 3*time.Second {
		return fail("pop3.lock_lease", "%s is too short: at least 3s (it is renewed every third)", c.POP3.LockLease.Duration)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fail("log.format", "%q: want \"text\" or \"json\"", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fail("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fail("tls.cert", "cert and key must be set together")
	}
	for _, f := range []struct{ key, path string }{
		{"tls.cert", c.TLS.Cert}, {"tls.key", c.TLS.Key},
		{"users.file", c.Users.File}, {"users.aliases", c.Users.Aliases},
		{"relay.access_file", c.Relay.AccessFile},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return fail(f.key, "cannot read %s: %v", f.path, errors.Unwrap(err))
		}
		fh.Close()
	}
	if d := c.POP3.IdleTimeout.Duration; d < 10*time.Minute {
		return fail("pop3.idle_timeout", "%v is shorter than the 10 minutes RFC 1939 section 3 requires", d)
	}
	if c.POP3.MaxConnections < 1 || c.POP3.MaxConnectionsIP < 1 {
		return fail("pop3.max_connections", "connection limits must be at least 1")
	}
	if c.SMTP.MaxConnections < 1 || c.SMTP.MaxConnectionsIP < 1 {
		return fail("smtp.max_connections", "connection limits must be at least 1")
	}
	if c.SMTP.MaxMessageBytes < 1024 {
		return fail("smtp.max_message_bytes", "%d is too small (at least 1024)", c.SMTP.MaxMessageBytes)
	}
	if c.SMTP.MaxRecipients < 1 {
		// RFC 5321 section 4.5.3.1.8: a server must accept at least 100.
		return fail("smtp.max_recipients", "must be at least 1 (RFC 5321 asks for 100)")
	}
	if c.SMTP.MinFreeBytes < 0 {
		return fail("smtp.min_free_bytes", "must not be negative")
	}
	if _, err := smtp.ParseSenderCheck(c.SMTP.SenderCheck); err != nil || c.SMTP.SenderCheck == "" {
		return fail("smtp.sender_check", "%q: want \"owner\", \"local-domains\" or \"any\"", c.SMTP.SenderCheck)
	}
	if c.SMTP.Timeout.Duration <= 0 {
		return fail("smtp.timeout", "must be positive")
	}
	if b := c.SMTP.BareNewline; b != "reject" && b != "normalize" {
		return fail("smtp.bare_newline", "%q is neither \"reject\" nor \"normalize\"", b)
	}
	if c.Relay.PopTTL.Duration <= 0 {
		return fail("relay.pop_ttl", "must be positive")
	}
	if c.Relay.GrantsURL != "" {
		if err := acl.CheckSharedURL(c.Relay.GrantsURL); err != nil {
			return fail("relay.grants_url", "%v", err)
		}
	}
	if f := c.Relay.GrantsPasswordFile; f != "" {
		if c.Relay.GrantsURL == "" {
			return fail("relay.grants_password_file", "set without relay.grants_url")
		}
		if _, err := readPasswordFile(f); err != nil {
			return fail("relay.grants_password_file", "%v", err)
		}
	}
	if c.Queue.MinRetry.Duration <= 0 {
		return fail("queue.min_retry", "must be positive")
	}
	if c.Queue.MaxAge.Duration < c.Queue.MinRetry.Duration {
		return fail("queue.max_age", "%v is shorter than queue.min_retry", c.Queue.MaxAge.Duration)
	}
	if c.Queue.Smarthost != "" {
		if _, _, err := net.SplitHostPort(c.Queue.Smarthost); err != nil {
			return fail("queue.smarthost", "%q is not host:port", c.Queue.Smarthost)
		}
	}
	if err := queue.CheckRoutes(c.Queue.Routes); err != nil {
		return fail("queue.routes", "%s", strings.TrimPrefix(err.Error(), "queue: config: "))
	}
	for i, m := range c.Relay.Mirror {
		key := fmt.Sprintf("relay.mirror[%d]", i)
		if m.Path == "" {
			return fail("relay.mirror.path", "%s: path is required", key)
		}
		switch m.Flavor {
		case "sendmail", "postfix":
		default:
			return fail("relay.mirror.flavor", "%s: %q: want \"sendmail\" or \"postfix\"", key, m.Flavor)
		}
		format, err := mapfile.ParseFormat(m.Format)
		if err != nil {
			return fail("relay.mirror.format", "%s: %q: want %s", key, m.Format, mapfile.Formats)
		}
		if ext := format.Extension(); (format == mapfile.CDB || format == mapfile.LMDB) && !strings.HasSuffix(m.Path, ext) {
			return fail("relay.mirror.path", "%s: %s maps are files named *%s (Postfix and sendmail add it to the map name), not %s", key, format, ext, m.Path)
		}
		if format == mapfile.LMDB && m.Flavor == "sendmail" {
			return fail("relay.mirror.format", "%s: sendmail has no lmdb map type: use flavor \"postfix\", or format \"hash\" or \"cdb\" for sendmail", key)
		}
		if st, err := os.Stat(filepath.Dir(m.Path)); err != nil || !st.IsDir() {
			return fail("relay.mirror.path", "%s: directory of %s does not exist", key, m.Path)
		}
	}
	if err := c.checkListeners(fail, pos); err != nil {
		return err
	}
	// sockaddr_un holds 108 octets with the NUL (unix(7)).
	if len(c.sendmailSocket()) > 107 {
		return fail("sendmail.socket", "%s is longer than the 107 octets a Unix socket path may have", c.sendmailSocket())
	}
	for _, u := range c.Sendmail.TrustedUsers {
		if u == "" || strings.ContainsAny(u, " \t\r\n:") {
			return fail("sendmail.trusted_users", "%q is not a user name", u)
		}
	}
	if c.Process.Group != "" && c.Process.User == "" {
		return fail("process.group", "needs process.user")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fail("metrics.listen", "%q is not host:port", c.Metrics.Listen)
		}
	}
	return nil
}

// checkListeners rejects malformed addresses and the same address used by
// two listeners (which would fail at bind time with a less helpful error).
func (c *Config) checkListeners(fail func(key, format string, args ...any) error, pos map[string]int) error {
	seen := map[string]string{}
	total := 0
	for _, l := range c.listeners() {
		for _, addr := range l.addrs {
			if path, ok := strings.CutPrefix(addr, "unix:"); ok && l.unixOK() {
				if !filepath.IsAbs(path) {
					return fail(l.key, "%q: a unix socket needs an absolute path", addr)
				}
				if other, dup := seen[addr]; dup {
					return fail(l.key, "%s is also used by %s", addr, other)
				}
				seen[addr] = l.key
				total++
				continue
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return fail(l.key, "%q is not host:port", addr)
			}
			if host != "" {
				if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
					return fail(l.key, "%q: listen on an IP address, not %q", addr, host)
				}
			}
			if port == "" {
				return fail(l.key, "%q has no port", addr)
			}
			// Port 0 asks the kernel for a free port: never a conflict.
			if other, dup := seen[addr]; dup && port != "0" {
				// Blame the key the file set: the other may be a default.
				if pos[l.key] == 0 && pos[other] > 0 {
					return fail(other, "%s is also used by %s", addr, l.key)
				}
				return fail(l.key, "%s is also used by %s", addr, other)
			}
			seen[addr] = l.key
			total++
		}
	}
	if total == 0 {
		return fail("pop3.listen", "no listeners at all: set at least one of pop3.listen, smtp.listen, ...")
	}
	return nil
}

type listenerSet struct {
	key   string
	addrs []string
}

// unixOK reports whether the set's listeners may be "unix:/path" too:
// the lookup servers', which a local MTA reaches over a unix socket.
func (l listenerSet) unixOK() bool {
	return l.key == "policy.listen" || l.key == "socketmap.listen"
}

func (c *Config) listeners() []listenerSet {
	return []listenerSet{
		{"pop3.listen", c.POP3.Listen},
		{"pop3.listen_tls", c.POP3.ListenTLS},
		{"smtp.listen", c.SMTP.Listen},
		{"smtp.submission", c.SMTP.Submission},
		{"smtp.submissions", c.SMTP.Submissions},
		{"policy.listen", c.Policy.Listen},
		{"socketmap.listen", c.Socketmap.Listen},
	}
}
