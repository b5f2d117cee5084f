package main

// The protocol packages declare the small interfaces they need; the types
// here implement them over auth, maildir, acl and the queue. Each adapter
// only translates types and errors: no policy lives here.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/accessdb"
	"github.com/popgate/popgate/acl/mapfile"
	"github.com/popgate/popgate/auth"
	"github.com/popgate/popgate/maildir"
	"github.com/popgate/popgate/pop3"
	"github.com/popgate/popgate/smtp"
	"github.com/popgate/popgate/smtp/aliases"
	"github.com/popgate/popgate/smtp/queue"
)

// authAdapter lets pop3 and smtp check passwords through auth.Service,
// mapping its errors onto the sentinels each protocol declares.
type authAdapter struct{ svc *auth.Service }

var (
	_ pop3.Authenticator = popAuth{}
	_ smtp.Authenticator = smtpAuth{}
)

type popAuth authAdapter

func (a popAuth) Authenticate(ctx context.Context, ip netip.Addr, user, pass string) (string, error) {
	u, err := a.svc.Authenticate(ctx, ip, user, pass)
	switch {
	case errors.Is(err, auth.ErrThrottled):
		return "", fmt.Errorf("%w: %w", pop3.ErrThrottled, err)
	case errors.Is(err, auth.ErrInvalidCredentials):
		return "", fmt.Errorf("%w: %w", pop3.ErrBadCredentials, err)
	}
	return u, err
}

type smtpAuth authAdapter

func (a smtpAuth) Authenticate(ctx context.Context, ip netip.Addr, user, pass string) (string, error) {
	u, err := a.svc.Authenticate(ctx, ip, user, pass)
	switch {
	case errors.Is(err, auth.ErrThrottled):
		return "", fmt.Errorf("%w: %w", smtp.ErrAuthThrottled, err)
	case errors.Is(err, auth.ErrInvalidCredentials):
		return "", fmt.Errorf("%w: %w", smtp.ErrBadCredentials, err)
	}
	return u, err
}

// maildrop opens users' maildirs for POP3, locked for the session.
type maildrop struct{ store *maildir.Store }

var _ pop3.Maildrop = maildrop{}

func (d maildrop) Open(_ context.Context, user string) (pop3.Mailbox, error) {
	local, domain, ok := strings.Cut(user, "@")
	if !ok {
		return nil, fmt.Errorf("maildrop: user %q has no domain", user)
	}
	mb, err := d.store.Open(domain, local)
	if err != nil {
		return nil, err
	}
	unlock, err := mb.Lock()
	if errors.Is(err, maildir.ErrLocked) {
		return nil, fmt.Errorf("%w: %w", pop3.ErrMailboxInUse, err)
	}
	if err != nil {
		return nil, err
	}
	return &popMailbox{mb: mb, unlock: unlock}, nil
}

// popMailbox is one locked maildir seen through a POP3 session.
type popMailbox struct {
	mb     *maildir.Mailbox
	unlock func() error
	msgs   []maildir.Message
}

func (p *popMailbox) List() ([]pop3.MessageInfo, error) {
	msgs, err := p.mb.List()
	if err != nil {
		return nil, err
	}
	p.msgs = msgs
	out := make([]pop3.MessageInfo, len(msgs))
	for i, m := range msgs {
		out[i] = pop3.MessageInfo{UID: m.UID, Size: m.Size}
	}
	return out, nil
}

func (p *popMailbox) Open(i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(p.msgs) {
		return nil, fmt.Errorf("maildrop: message index %d out of range", i)
	}
	rc, err := p.mb.Open(p.msgs[i])
	if errors.Is(err, maildir.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", pop3.ErrMessageGone, err)
	}
	return rc, err
}

// Commit applies the UPDATE state: deleted messages go, the rest are
// marked seen (moved to cur/), as a POP3 server over maildir should.
func (p *popMailbox) Commit(deleted []int) error {
	del := make([]maildir.Message, 0, len(deleted))
	gone := make(map[int]bool, len(deleted))
	for _, i := range deleted {
		if i >= 0 && i < len(p.msgs) {
			del = append(del, p.msgs[i])
			gone[i] = true
		}
	}
	if err := p.mb.Delete(del); err != nil {
		return err
	}
	keep := make([]maildir.Message, 0, len(p.msgs)-len(del))
	for i, m := range p.msgs {
		if !gone[i] {
			keep = append(keep, m)
		}
	}
	return p.mb.MarkSeen(keep)
}

func (p *popMailbox) Close() error { return p.unlock() }

// smtpPolicy asks the acl.Policy in effect (reload swaps it) and
// translates its decisions. Recipients relayed because of a POP3 grant
// are counted for `popgate report`.
type smtpPolicy struct {
	policy func() *acl.Policy
	report *relayReport
}

var _ smtp.Policy = smtpPolicy{}

func (s smtpPolicy) request(c smtp.Client, from, rcpt string) acl.Request {
	// The HELO name is the client's claim, not a verified name: it must not
	// match host-name rules (it could claim a RELAY domain).
	return acl.Request{IP: c.IP, From: from, To: rcpt, AuthUser: c.AuthUser}
}

func (s smtpPolicy) CheckConnect(c smtp.Client) smtp.Verdict {
	return verdict(s.policy().CheckConnect(s.request(c, "", "")))
}

func (s smtpPolicy) CheckFrom(c smtp.Client, from string) smtp.Verdict {
	return verdict(s.policy().CheckFrom(s.request(c, from, "")))
}

func (s smtpPolicy) CheckRcpt(c smtp.Client, from, rcpt string) smtp.Verdict {
	d := s.policy().CheckRcpt(s.request(c, from, rcpt))
	if d.Action == acl.Relay && d.GrantUser != "" && s.report != nil {
		s.report.relayed(d.GrantUser)
	}
	return verdict(d)
}

func verdict(d acl.Decision) smtp.Verdict {
	v := smtp.Verdict{Code: d.Code, Enhanced: d.Enhanced, Text: d.Text, Reason: d.Reason,
		GrantUser: d.GrantUser, GrantTime: d.GrantTime}
	switch d.Action {
	case acl.Accept:
		v.Action = smtp.ActionAccept
	case acl.Relay:
		v.Action = smtp.ActionRelay
	case acl.TempFail:
		v.Action = smtp.ActionTempFail
	case acl.Discard:
		v.Action = smtp.ActionDiscard
	default:
		// Anything unknown refuses: never an open relay by omission.
		v.Action = smtp.ActionReject
	}
	return v
}

// recipients resolves local addresses through the aliases and the users
// file. Alias targets in remote domains are not forwarded (popgate has no
// sender to give them here); they are logged and skipped.
type recipients struct {
	users   *auth.Service
	aliases func() *aliases.Map // the map in effect (reload swaps it); nil: none
	isLocal func(domain string) bool
	logger  *slog.Logger
}

var _ smtp.Recipients = (*recipients)(nil)

func (r *recipients) Resolve(_ context.Context, addr string) ([]string, error) {
	// User names are case-insensitive in the users file (auth lowercases
	// them), so the local part is folded here too.
	addr = strings.ToLower(addr)
	addrs := []string{addr}
	if m := r.aliases(); m != nil {
		var err error
		if addrs, err = m.Expand(addr, r.isLocal); err != nil {
			r.logger.Warn("aliases expansion failed", "rcpt", addr, "err", err)
			return nil, fmt.Errorf("%w: %w", smtp.ErrNoSuchUser, err)
		}
	}
	var out []string
	for _, a := range addrs {
		_, domain, _ := strings.Cut(a, "@")
		switch {
		case !r.isLocal(domain):
			r.logger.Warn("aliases remote target skipped", "rcpt", addr, "target", a)
		case r.users.UserExists(a):
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", addr, smtp.ErrNoSuchUser)
	}
	return out, nil
}

// MayUse lets an authenticated user send as themselves or as an alias that
// resolves to them.
func (r *recipients) MayUse(authUser, from string) bool {
	from = strings.ToLower(from)
	if from == strings.ToLower(authUser) {
		return true
	}
	_, domain, _ := strings.Cut(from, "@")
	m := r.aliases()
	if m == nil || !r.isLocal(domain) {
		return false
	}
	boxes, err := m.Expand(from, r.isLocal)
	if err != nil {
		return false
	}
	for _, b := range boxes {
		if b == strings.ToLower(authUser) {
			return true
		}
	}
	return false
}

// deliverer writes into local maildirs.
type deliverer struct{ store *maildir.Store }

var _ smtp.Deliverer = deliverer{}

// Deliver is final delivery: maildir adds Return-Path and Delivered-To and
// refuses loops. ENOSPC and EDQUOT pass through wrapped; smtp knows them.
func (d deliverer) Deliver(ctx context.Context, from string, mailboxes []string, r io.Reader) error {
	addrs := make([]maildir.Address, 0, len(mailboxes))
	for _, m := range mailboxes {
		local, domain, _ := strings.Cut(m, "@")
		addrs = append(addrs, maildir.Address{Local: local, Domain: domain})
	}
	_, err := d.store.DeliverMail(ctx, from, addrs, r)
	if errors.Is(err, maildir.ErrMailLoop) {
		return fmt.Errorf("%w: %w", smtp.ErrMailLoop, err)
	}
	return err
}

// spooler hands remote recipients to the outbound queue.
type spooler struct{ q *queue.Queue }

var _ smtp.Spooler = spooler{}

func (s spooler) Spool(ctx context.Context, from string, to []string, r io.Reader) (string, error) {
	return s.q.Enqueue(ctx, from, to, r)
}

// bouncer takes DSNs from the queue back into the mail system: local
// senders get them in their maildir, remote ones through the queue.
type bouncer struct {
	rcpts *recipients
	store *maildir.Store
	queue func() *queue.Queue // set after the queue exists
	log   *slog.Logger
}

var _ queue.Bouncer = (*bouncer)(nil)

// maxBounce bounds a DSN held in memory; the queue puts only the original
// headers in it.
const maxBounce = 1 << 20

func (b *bouncer) Inject(ctx context.Context, from string, to []string, r io.Reader) error {
	msg, err := io.ReadAll(io.LimitReader(r, maxBounce+1))
	if err != nil {
		return fmt.Errorf("bounce: read: %w", err)
	}
	if len(msg) > maxBounce {
		return fmt.Errorf("bounce: larger than %d bytes", maxBounce)
	}
	var remote []string
	for _, rcpt := range to {
		rcpt = strings.ToLower(rcpt)
		_, domain, _ := strings.Cut(rcpt, "@")
		if !b.rcpts.isLocal(domain) {
			remote = append(remote, rcpt)
			continue
		}
		boxes, err := b.rcpts.Resolve(ctx, rcpt)
		if err != nil {
			b.log.Warn("bounce undeliverable", "rcpt", rcpt, "err", err)
			continue
		}
		if err := (deliverer{b.store}).Deliver(ctx, from, boxes, bytes.NewReader(msg)); err != nil {
			return err
		}
	}
	if len(remote) > 0 {
		if _, err := b.queue().Enqueue(ctx, from, remote, bytes.NewReader(msg)); err != nil {
			return err
		}
	}
	return nil
}

// mapWriter writes acl's mirror entries with acl/mapfile, in the format
// configured for each path: hash in place under flock, cdb and lmdb by
// rename, with postmap's key form (NUL-terminated in lmdb).
type mapWriter struct {
	formats map[string]mapfile.Format
	now     func() time.Time
}

var _ acl.MapWriter = mapWriter{}

func (w mapWriter) WriteMap(path string, entries []acl.MapEntry) error {
	es := make([]accessdb.Entry, len(entries))
	for i, e := range entries {
		es[i] = accessdb.Entry{Key: []byte(e.Key), Value: []byte(e.Value)}
	}
	f := w.formats[path]
	return mapfile.WriteFile(path, mapfile.PostmapForm(f, es), f, w.now)
}
