package pickup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/popgate/popgate/smtp"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxMessageBytes matches the SMTP server's default.
	DefaultMaxMessageBytes = smtp.DefaultMaxMessageBytes
	// DefaultMaxRecipients matches the SMTP server's default.
	DefaultMaxRecipients = smtp.DefaultMaxRecipients
	// DefaultTimeout bounds one socket request, reading and delivering.
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxConns bounds submissions in progress at once.
	DefaultMaxConns = 32
)

// deliverTimeout bounds Deliver plus Spool for one message.
const deliverTimeout = 5 * time.Minute

// Config configures a Server. Zero values take the defaults above.
type Config struct {
	// Hostname names this host in Received and Message-ID.
	Hostname string
	// LocalDomains are the local domains; the first qualifies bare names
	// ("root") and is the domain of the default sender user@domain.
	LocalDomains []string
	// MaxMessageBytes bounds one message as the program hands it over.
	MaxMessageBytes int64
	// MaxRecipients bounds the recipients of one message.
	MaxRecipients int
	// Timeout bounds one socket request.
	Timeout time.Duration
	// MaxConns bounds submissions in progress at once.
	MaxConns int
	// TrustedUsers may set any envelope sender with -f without a warning
	// header, like sendmail's trusted users. root and the user the server
	// runs as always may.
	TrustedUsers []string
	// TempDir holds messages larger than 1 MiB while they are delivered.
	TempDir string
	// Now is the clock for Date: and Received:; nil is time.Now.
	Now func() time.Time
	// LookupUser names a uid; nil uses the system's user database, and a
	// uid it does not know is named "uid<N>".
	LookupUser func(uid uint32) string
	// Logger receives the always-on events; nil discards.
	Logger *slog.Logger
}

// Deps are the delivery path the SMTP server uses as well.
type Deps struct {
	Recipients smtp.Recipients
	Deliverer  smtp.Deliverer
	Spooler    smtp.Spooler
}

// Cred is who handed a message over, as the kernel says: the peer of the
// socket (SO_PEERCRED) or the owner of the maildrop file.
type Cred struct {
	UID uint32
	PID int32  // 0 when unknown (maildrop)
	Via string // "socket" or "maildrop"
}

// Server delivers local submissions.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	domain string          // first local domain, normalised
	local  map[string]bool // every local domain, normalised
	sem    chan struct{}   // submissions in progress
	conns  chan struct{}   // socket connections open

	mu     sync.Mutex
	lns    []net.Listener
	closed bool
	wg     sync.WaitGroup
}

// NewServer checks cfg and deps and builds a Server.
func NewServer(cfg Config, deps Deps) (*Server, error) {
	if deps.Recipients == nil || deps.Deliverer == nil || deps.Spooler == nil {
		return nil, errors.New("pickup: new server: Recipients, Deliverer and Spooler are required")
	}
	if len(cfg.LocalDomains) == 0 {
		return nil, errors.New("pickup: new server: at least one local domain is required")
	}
	d, err := smtp.NormalizeDomain(cfg.LocalDomains[0])
	if err != nil {
		return nil, fmt.Errorf("pickup: new server: local domain %q: %w", cfg.LocalDomains[0], err)
	}
	local := make(map[string]bool, len(cfg.LocalDomains))
	for _, ld := range cfg.LocalDomains {
		n, err := smtp.NormalizeDomain(ld)
		if err != nil {
			return nil, fmt.Errorf("pickup: new server: local domain %q: %w", ld, err)
		}
		local[n] = true
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LookupUser == nil {
		cfg.LookupUser = systemUser
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = d
	}
	return &Server{cfg: cfg, deps: deps, log: cfg.Logger.With("proto", "pickup"), domain: d, local: local,
		sem:   make(chan struct{}, cfg.MaxConns),
		conns: make(chan struct{}, cfg.MaxConns)}, nil
}

// systemUser names a uid from the system's user database.
func systemUser(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "uid" + strconv.FormatUint(uint64(uid), 10)
	}
	return u.Username
}

// Serve accepts local submissions on a Unix socket listener until
// Shutdown. The peer is named by SO_PEERCRED, never by what it sends.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("pickup: accept: %w", err)
		}
		select {
		case s.conns <- struct{}{}:
		default:
			// Full: say so at once rather than let idle callers pile up
			// file descriptors. The caller keeps the mail in the maildrop.
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			b, _ := json.Marshal(Reply{Error: "too many local submissions at once, try again later", Code: ExTempFail})
			_, _ = c.Write(append(b, '\n'))
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.conns }()
			s.handle(c)
		}()
	}
}

// Shutdown stops accepting and waits for submissions in progress (each is
// bounded by Timeout) or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.cfg.Timeout))
	reply := func(r Reply) {
		b, _ := json.Marshal(r)
		_, _ = c.Write(append(b, '\n'))
	}
	cred, err := peerCred(c)
	if err != nil {
		s.log.Error("pickup peer credentials", "err", err)
		reply(Reply{Error: "cannot tell who is calling", Code: ExSoftware})
		return
	}
	cred.Via = "socket"
	br := bufio.NewReaderSize(c, 4096)
	req, _, err := readRequest(br)
	if err != nil {
		s.log.Info("pickup request refused", "uid", cred.UID, "err", err)
		reply(Reply{Error: err.Error(), Code: ExProtocol})
		return
	}
	id, err := s.Submit(context.Background(), cred, req, br)
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			s.log.Error("pickup delivery failed", "uid", cred.UID, "err", err)
			pe = &Error{Code: ExTempFail, Msg: "local delivery failed, try again later"}
		}
		reply(Reply{Error: pe.Msg, Code: pe.Code})
		return
	}
	reply(Reply{ID: id})
}

// Submit delivers one message handed over by cred: it reads exactly
// req.Size octets from body, and returns the message id only once the
// message is fsynced into every local mailbox and the queue. A refusal the
// caller must see is an *Error; any other error is internal and temporary.
func (s *Server) Submit(ctx context.Context, cred Cred, req Request, body io.Reader) (string, error) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		return "", errorf(ExTempFail, "too many local submissions at once, try again later")
	}
	if req.Size > s.cfg.MaxMessageBytes {
		return "", errorf(ExDataErr, "message of %d octets is larger than the limit of %d", req.Size, s.cfg.MaxMessageBytes)
	}
	if len(req.Rcpts) > s.cfg.MaxRecipients {
		return "", errorf(ExDataErr, "%d recipients, at most %d allowed", len(req.Rcpts), s.cfg.MaxRecipients)
	}
	userName := s.cfg.LookupUser(cred.UID)
	log := s.log.With("uid", cred.UID, "user", userName, "via", cred.Via)
	if cred.PID != 0 {
		log = log.With("pid", cred.PID)
	}
	own := strings.ToLower(userName) + "@" + s.domain
	from := own
	if req.From != nil {
		if from = *req.From; from != "" {
			a, err := s.qualify(from)
			if err != nil {
				return "", errorf(ExDataErr, "sender %q: %v", from, err)
			}
			from = a
		}
	}

	var mailboxes, remote, all []string
	seen := map[string]bool{}
	for _, r := range req.Rcpts {
		addr, err := s.qualify(r)
		if err != nil {
			return "", errorf(ExDataErr, "recipient %q: %v", r, err)
		}
		all = append(all, addr)
		_, domain, _ := strings.Cut(addr, "@")
		if !s.local[domain] {
			// A local user may send anywhere, like sendmail's local mailer:
			// the kernel vouches for who they are.
			if !seen["r:"+addr] {
				seen["r:"+addr] = true
				remote = append(remote, addr)
			}
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		boxes, err := s.deps.Recipients.Resolve(rctx, addr)
		cancel()
		if errors.Is(err, smtp.ErrNoSuchUser) || (err == nil && len(boxes) == 0) {
			log.Info("pickup unknown recipient", "rcpt", addr)
			return "", errorf(ExNoUser, "%s: user unknown", addr)
		}
		if err != nil {
			return "", fmt.Errorf("pickup: resolve %s: %w", addr, err)
		}
		for _, b := range boxes {
			if !seen["l:"+b] {
				seen["l:"+b] = true
				mailboxes = append(mailboxes, b)
			}
		}
	}

	buf := &spill{dir: s.cfg.TempDir}
	defer buf.close()
	n := &normalizer{w: buf}
	copied, err := io.Copy(n, io.LimitReader(body, req.Size))
	switch {
	case errors.Is(err, errNUL):
		return "", errorf(ExDataErr, "the message contains a NUL octet")
	case err != nil:
		return "", errorf(ExTempFail, "reading the message failed: %v", err)
	case copied != req.Size:
		return "", errorf(ExDataErr, "message ended after %d of %d octets", copied, req.Size)
	}
	if err := n.Close(); err != nil {
		return "", err
	}

	id := newID()
	now := s.cfg.Now()
	prefix := s.received(id, cred, userName, all, now)
	if req.From != nil && from != own && !s.trusted(cred.UID, userName) {
		// sendmail's warning for an untrusted -f: the mail goes, the
		// recipient sees who really sent it.
		prefix += fmt.Sprintf("X-Authentication-Warning: %s: %s set sender to %s using -f\r\n",
			s.cfg.Hostname, headerSafe(userName), headerSafe(orNull(from)))
		log.Warn("pickup untrusted sender", "from", from)
	}
	head, err := buf.head(maxHeaderBytes)
	if err != nil {
		return "", err
	}
	hdr, off, err := rewriteHeader(head, buf.size <= maxHeaderBytes, headerFix{
		prefix: prefix, from: orDefault(from, own), fullName: req.FullName, now: now,
		messageID: id + "@" + s.cfg.Hostname,
	})
	if err != nil {
		return "", errorf(ExDataErr, "%v", err)
	}
	msg := func() io.Reader { return io.MultiReader(bytes.NewReader(hdr), buf.reader(int64(off))) }

	dctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	defer cancel()
	if len(mailboxes) > 0 {
		if err := s.deps.Deliverer.Deliver(dctx, from, mailboxes, msg()); err != nil {
			return "", fmt.Errorf("pickup: deliver %s: %w", id, err)
		}
	}
	qid := ""
	if len(remote) > 0 {
		if qid, err = s.deps.Spooler.Spool(dctx, from, remote, msg()); err != nil {
			return "", fmt.Errorf("pickup: spool %s: %w", id, err)
		}
	}
	log.Info("pickup message accepted", "id", id, "from", from, "size", buf.size,
		"mailboxes", len(mailboxes), "remote_rcpts", len(remote), "queue_id", qid)
	return id, nil
}

// qualify parses an address as a local program gives it: a bare name is
// a user of the first local domain. Routing syntax and address literals
// are refused as the SMTP server refuses them.
func (s *Server) qualify(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr != "" && !strings.Contains(addr, "@") {
		addr += "@" + s.domain
	}
	a, err := smtp.ParseAddress(addr)
	if err != nil {
		return "", err
	}
	if a.Literal {
		return "", errors.New("address literals are not accepted")
	}
	return a.String(), nil
}

// trusted reports whether the caller may set any envelope sender.
func (s *Server) trusted(uid uint32, name string) bool {
	// The server's own uid is asked now: it changes at a privilege drop.
	return uid == 0 || uid == uint32(os.Getuid()) || slices.Contains(s.cfg.TrustedUsers, name)
}

// received is popgate's Received header for a local submission. The user
// comes from the kernel (SO_PEERCRED or the maildrop file's owner), never
// from the request; "for" names the recipient only when there is one.
func (s *Server) received(id string, cred Cred, userName string, rcpts []string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Received: by %s (popgate, from userid %d %s via %s)\r\n\tid %s",
		s.cfg.Hostname, cred.UID, headerSafe(userName), cred.Via, id)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", headerSafe(rcpts[0]))
	}
	fmt.Fprintf(&b, "; %s\r\n", now.Format(time.RFC1123Z))
	return b.String()
}

// headerSafe keeps printable ASCII outside comment specials.
func headerSafe(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '(' || r == ')' || r == '\\' || r == ';' {
			return '_'
		}
		return r
	}, s)
}

func orNull(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// newID returns a random 16-character message id.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
