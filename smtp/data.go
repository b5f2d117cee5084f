package smtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

var (
	// errNULByte stops reading a message that contains a NUL octet.
	errNULByte = errors.New("smtp: NUL in message")
	// errBareLF and errBareCR stop reading a message with a bare LF or
	// CR (RFC 5321 §2.3.8) from a client not allowed to send one.
	errBareLF = errors.New("smtp: bare LF in message")
	errBareCR = errors.New("smtp: bare CR in message")
	// errBufferFailed marks a failure to buffer the message locally.
	errBufferFailed = errors.New("smtp: buffer message")
)

// Data reads the message (DATA or BDAT), then delivers it once to the
// Deliverer for all local mailboxes and once to the Spooler for all remote
// recipients, and answers 250 only when both returned nil.
//
// Message rules: at most MaxMessageBytes octets from the client (go-smtp
// enforces it and answers 552 5.3.4; counted again here); NUL octets are
// refused (554 5.6.0, RFC 5321 §4.5.2 allows no NUL in text); a bare LF or
// bare CR is refused with 550 5.5.2 (RFC 5321 §2.3.8), or, under
// BareNewlineNormalize for a trusted or authenticated client, turned into
// CRLF (LF) or a space (CR: never a new header line). So what is stored and
// relayed has one line-ending convention and no stray end-of-data
// lookalike can reach a downstream server; go-smtp itself recognises only
// CRLF.CRLF as the end of DATA. Text lines have no length limit of their
// own and are kept byte for byte, however long (RFC 5321 §4.5.3.1.6).
//
// Messages up to MemoryBufferBytes are buffered in memory, larger ones in
// a temporary file under TempDir that is removed afterwards. Local delivery
// runs first, then the spool: if the spool fails after local delivery
// succeeded, the client gets 451 and its retry duplicates the local copy,
// which RFC 5321 §6.1 prefers to losing mail.
func (s *session) Data(r io.Reader) error {
	if _, bdat := r.(*io.PipeReader); bdat {
		s.mu.Lock()
		s.bdatOpen = true
		s.mu.Unlock()
	}
	err := s.data(r)
	if errors.Is(err, gosmtp.ErrDataReset) {
		return err // BDAT aborted by RSET or a closed connection: no reply
	}
	return s.wrapErr("data", s.deliveryReply(err))
}

func (s *session) data(r io.Reader) error {
	s.mu.Lock()
	tx, authUser := s.tx, s.authUser
	s.mu.Unlock()
	db := s.srv.bufs.Get().(*dataBufs)
	defer s.srv.bufs.Put(db) // after delivery: the body reader reads db.mem
	db.mem.Reset()
	buf := &spillBuffer{limit: s.srv.cfg.MemoryBufferBytes, dir: s.srv.cfg.TempDir, mem: &db.mem}
	defer buf.Close()
	n := &normalizer{w: buf, max: s.srv.cfg.MaxMessageBytes, tmp: db.norm[:0], relax: s.srv.relaxedNewlines(s.tc)}
	defer func() { db.norm = n.tmp[:0] }()
	if _, err := io.CopyBuffer(n, &deadlineReader{r: r, c: s.nc, d: s.srv.cfg.ReadTimeout}, db.copy); err != nil {
		switch {
		case errors.Is(err, errNULByte):
			return errNUL
		case errors.Is(err, errBareLF), errors.Is(err, errBareCR):
			s.log.Info("smtp message refused", "ip", s.tc.ip.String(), "from", tx.from, "reason", err.Error())
			if errors.Is(err, errBareLF) {
				return errDataBareLF
			}
			return errDataBareCR
		case errors.Is(err, gosmtp.ErrDataTooLarge):
			return gosmtp.ErrDataTooLarge
		case errors.Is(err, gosmtp.ErrDataReset), errors.Is(err, errBufferFailed):
			return err
		}
		// The client went away or stalled: not an internal error.
		s.log.Info("smtp message read failed", "ip", s.tc.ip.String(), "err", err)
		return errReadFailed
	}
	if err := n.Close(); errors.Is(err, errBareCR) {
		return errDataBareCR
	} else if err != nil {
		return fmt.Errorf("smtp: read message: %w", err)
	}
	// Read to the end: BDAT LAST arrived, go-smtp waits for this Data.
	s.mu.Lock()
	s.bdatOpen = false
	s.mu.Unlock()

	id := newID()
	log := s.log.With("id", id)
	if tx.discard || (len(tx.mailboxes) == 0 && len(tx.remote) == 0) {
		log.Info("smtp message discarded", "from", tx.from, "size", n.out)
		return reply(250, "2.0.0", "OK: queued as "+id)
	}
	hdr := s.received(id, tx, authUser)

	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	if len(tx.mailboxes) > 0 {
		body, err := buf.Reader()
		if err != nil {
			return err
		}
		if err := s.srv.deps.Deliverer.Deliver(ctx, tx.from, tx.mailboxes, io.MultiReader(strings.NewReader(hdr), body)); err != nil {
			return fmt.Errorf("smtp: deliver %s: %w", id, err)
		}
	}
	qid := ""
	if len(tx.remote) > 0 {
		body, err := buf.Reader()
		if err != nil {
			return err
		}
		qid, err = s.srv.deps.Spooler.Spool(ctx, tx.from, tx.remote, io.MultiReader(strings.NewReader(hdr), body))
		if err != nil {
			return fmt.Errorf("smtp: spool %s: %w", id, err)
		}
	}
	log.Info("smtp message accepted", "ip", s.tc.ip.String(), "from", tx.from,
		"size", n.out, "mailboxes", len(tx.mailboxes), "remote_rcpts", len(tx.remote), "queue_id", qid, "relay_grant", tx.grantUser)
	return reply(250, "2.0.0", "OK: queued as "+id)
}

// newID returns a random 16-character transaction id.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// deadlineReader refreshes the read deadline before every read, so DATA is
// bounded by ReadTimeout of silence rather than a single deadline for the
// whole message (go-smtp sets one per command line only).
type deadlineReader struct {
	r io.Reader
	c interface{ SetReadDeadline(time.Time) error }
	d time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	_ = d.c.SetReadDeadline(time.Now().Add(d.d))
	return d.r.Read(p)
}

// normalizer checks line endings, refuses NUL and counts input octets
// against max. Strict (relax false) it stops at the first bare LF or bare
// CR; relaxed it writes CRLF for a bare LF and a space for a bare CR.
// Everything else passes unchanged, lines of any length included.
type normalizer struct {
	w      io.Writer
	max    int64
	in     int64
	out    int64
	relax  bool
	prevCR bool // the last octet seen was a CR not yet written
	tmp    []byte
}

func (n *normalizer) Write(p []byte) (int, error) {
	n.in += int64(len(p))
	if n.in > n.max {
		return 0, gosmtp.ErrDataTooLarge
	}
	if bytes.IndexByte(p, 0) >= 0 {
		return 0, errNULByte
	}
	out := n.tmp[:0]
	for rest := p; len(rest) > 0; {
		if n.prevCR {
			n.prevCR = false
			if rest[0] == '\n' {
				out = append(out, '\r', '\n')
				rest = rest[1:]
				continue
			}
			if !n.relax {
				return 0, errBareCR
			}
			out = append(out, ' ')
		}
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			out = append(out, rest...)
			break
		}
		out = append(out, rest[:i]...)
		if rest[i] == '\r' {
			n.prevCR = true
		} else {
			if !n.relax {
				return 0, errBareLF
			}
			out = append(out, '\r', '\n')
		}
		rest = rest[i+1:]
	}
	n.tmp = out
	m, err := n.w.Write(out)
	n.out += int64(m)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close handles a CR at the very end, which no LF followed.
func (n *normalizer) Close() error {
	if !n.prevCR {
		return nil
	}
	n.prevCR = false
	if !n.relax {
		return errBareCR
	}
	m, err := n.w.Write([]byte{' '})
	n.out += int64(m)
	return err
}

// dataBufs is one message's scratch space, pooled by the Server so that
// a busy server does not allocate (and collect) ~100 KB per message.
type dataBufs struct {
	copy []byte       // between the DATA reader and the normalizer
	norm []byte       // the normalizer's output
	mem  bytes.Buffer // the message, up to MemoryBufferBytes
}

func newDataBufs() any { return &dataBufs{copy: make([]byte, 32*1024)} }

// spillBuffer keeps up to limit octets in memory and moves to a temporary
// file beyond that.
type spillBuffer struct {
	limit int64
	dir   string
	mem   *bytes.Buffer // pooled by the Server
	f     *os.File
	size  int64
}

func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.f == nil && int64(b.mem.Len()+len(p)) > b.limit {
		f, err := os.CreateTemp(b.dir, "popgate-smtp-*")
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errBufferFailed, err)
		}
		b.f = f
		if _, err := f.Write(b.mem.Bytes()); err != nil {
			return 0, fmt.Errorf("%w: %w", errBufferFailed, err)
		}
		b.mem.Reset()
	}
	b.size += int64(len(p))
	if b.f != nil {
		n, err := b.f.Write(p)
		if err != nil {
			return n, fmt.Errorf("%w: %w", errBufferFailed, err)
		}
		return n, nil
	}
	return b.mem.Write(p)
}

// Reader returns a fresh reader over everything written so far.
func (b *spillBuffer) Reader() (io.Reader, error) {
	if b.f != nil {
		return io.NewSectionReader(b.f, 0, b.size), nil
	}
	return bytes.NewReader(b.mem.Bytes()), nil
}

// Close removes the temporary file, if any.
func (b *spillBuffer) Close() {
	if b.f != nil {
		_ = b.f.Close()
		_ = os.Remove(b.f.Name())
		b.f = nil
	}
}
