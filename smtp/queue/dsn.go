package queue

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// DSN actions (RFC 3464 §2.3.3) used by the queue.
const (
	actionFailed  = "failed"
	actionDelayed = "delayed"
)

// sendBounce reports every failed recipient to the sender in one DSN and
// marks them bounced. A null sender never gets one (RFC 5321 §4.5.5):
// the failure is logged and dropped. If Inject fails the recipients stay
// failed and the DSN is tried again at the next attempt.
func (q *Queue) sendBounce(ctx context.Context, e *envelope, now time.Time) {
	var failed []RecipientStatus
	for _, r := range e.Rcpts {
		if r.State == StateFailed {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		return
	}
	log := q.log.With("id", e.ID)
	if e.From == "" {
		for _, r := range failed {
			log.Warn("queue bounce dropped", "reason", "null sender", "rcpt", r.Addr, "status", r.Status, "error", r.LastError)
		}
	} else {
		if err := q.injectDSN(ctx, e, failed, actionFailed, now); err != nil {
			log.Error("queue bounce failed", "err", err)
			return
		}
		log.Info("queue bounced", "to", e.From, "rcpts", len(failed))
	}
	for i := range e.Rcpts {
		if e.Rcpts[i].State == StateFailed {
			e.Rcpts[i].State = StateBounced
		}
	}
}

// sendWarning sends one "delayed" DSN once the message has waited
// WarnAfter with recipients still pending.
func (q *Queue) sendWarning(ctx context.Context, e *envelope, now time.Time) {
	if q.cfg.WarnAfter <= 0 || e.Warned || now.Sub(e.Created) < q.cfg.WarnAfter {
		return
	}
	var pending []RecipientStatus
	for _, r := range e.Rcpts {
		if r.State == StatePending {
			pending = append(pending, r)
		}
	}
	if len(pending) == 0 {
		return
	}
	if e.From != "" {
		if err := q.injectDSN(ctx, e, pending, actionDelayed, now); err != nil {
			q.log.Error("queue delay warning failed", "id", e.ID, "err", err)
			return
		}
		q.log.Info("queue delay warning", "id", e.ID, "to", e.From, "rcpts", len(pending))
	}
	e.Warned = true
}

func (q *Queue) injectDSN(ctx context.Context, e *envelope, rcpts []RecipientStatus, action string, now time.Time) error {
	hdr, err := q.readHeader(e.ID, e.Size)
	if err != nil {
		q.log.Warn("queue DSN without original header", "id", e.ID, "err", err)
	}
	b, err := q.buildDSN(e, rcpts, action, hdr, now)
	if err != nil {
		return err
	}
	if err := q.cfg.Bouncer.Inject(ctx, "", []string{e.From}, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("queue: inject DSN for %s: %w", e.ID, err)
	}
	return nil
}

// buildDSN writes an RFC 3464 delivery status notification: a
// multipart/report (RFC 6522) with a human-readable part, the
// message/delivery-status part and the original header as
// text/rfc822-headers.
func (q *Queue) buildDSN(e *envelope, rcpts []RecipientStatus, action string, origHeader []byte, now time.Time) ([]byte, error) {
	host := q.cfg.Hostname
	utf8 := e.needsUTF8()

	// go-message writes fields in the reverse order of Set: this order
	// puts From first and Content-Type last.
	var h message.Header
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})
	h.Set("MIME-Version", "1.0")
	// RFC 3834 §5: automatic responses are marked and must not be answered.
	h.Set("Auto-Submitted", "auto-replied")
	h.Set("Message-Id", fmt.Sprintf("<%s.%s.dsn@%s>", e.ID, action, host))
	h.Set("Date", now.Format(time.RFC1123Z))
	if action == actionDelayed {
		h.Set("Subject", "Delayed Mail (still being retried)")
	} else {
		h.Set("Subject", "Undelivered Mail Returned to Sender")
	}
	h.Set("To", "<"+e.From+">")
	h.Set("From", "Mail Delivery System <MAILER-DAEMON@"+host+">")

	var buf bytes.Buffer
	mw, err := message.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("queue: DSN for %s: %w", e.ID, err)
	}

	// Part 1: for humans.
	var ph message.Header
	ph.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	ph.Set("Content-Description", "Notification")
	var text strings.Builder
	fmt.Fprintf(&text, "This is the mail system at host %s.\r\n\r\n", host)
	if action == actionDelayed {
		fmt.Fprintf(&text, "Your message has not been delivered yet to the recipients below.\r\n"+
			"It is still being retried until %s; no action is needed from you.\r\n\r\n",
			e.Created.Add(q.cfg.MaxAge).Format(time.RFC1123Z))
	} else {
		fmt.Fprintf(&text, "Your message could not be delivered to the recipients below.\r\n"+
			"Temporary failures are retried for %s before they are reported here.\r\n\r\n", q.cfg.MaxAge)
	}
	for _, r := range rcpts {
		fmt.Fprintf(&text, "<%s>: %s\r\n", r.Addr, r.LastError)
	}
	if err := writePart(mw, ph, text.String()); err != nil {
		return nil, fmt.Errorf("queue: DSN for %s: %w", e.ID, err)
	}

	// Part 2: the machine-readable status (RFC 3464 §2.2, §2.3).
	var ds strings.Builder
	fmt.Fprintf(&ds, "Reporting-MTA: dns; %s\r\n", host)
	fmt.Fprintf(&ds, "X-Popgate-Queue-ID: %s\r\n", e.ID)
	fmt.Fprintf(&ds, "Arrival-Date: %s\r\n", e.Created.Format(time.RFC1123Z))
	for _, r := range rcpts {
		ds.WriteString("\r\n")
		addrType := "rfc822"
		if !isASCII(r.Addr) {
			addrType = "utf-8" // RFC 6533 §3
		}
		fmt.Fprintf(&ds, "Final-Recipient: %s; %s\r\n", addrType, r.Addr)
		fmt.Fprintf(&ds, "Action: %s\r\n", action)
		status := r.Status
		if status == "" {
			status = "4.0.0"
		}
		fmt.Fprintf(&ds, "Status: %s\r\n", status)
		if r.RemoteMTA != "" {
			fmt.Fprintf(&ds, "Remote-MTA: dns; %s\r\n", r.RemoteMTA)
		}
		if r.LastError != "" {
			kind := "X-Popgate" // a local reason, not a peer's reply
			if r.RemoteMTA != "" && len(r.LastError) > 3 && r.LastError[3] == ' ' {
				kind = "smtp"
			}
			diag := r.LastError
			if !utf8 {
				diag = asciiOnly(diag) // message/delivery-status is US-ASCII (RFC 3464 §2.1.2)
			}
			fmt.Fprintf(&ds, "Diagnostic-Code: %s; %s\r\n", kind, diag)
		}
		if !r.LastAttempt.IsZero() {
			fmt.Fprintf(&ds, "Last-Attempt-Date: %s\r\n", r.LastAttempt.Format(time.RFC1123Z))
		}
		if action == actionDelayed {
			fmt.Fprintf(&ds, "Will-Retry-Until: %s\r\n", e.Created.Add(q.cfg.MaxAge).Format(time.RFC1123Z))
		}
	}
	var dh message.Header
	if utf8 {
		dh.SetContentType("message/global-delivery-status", nil) // RFC 6533 §6
	} else {
		dh.SetContentType("message/delivery-status", nil)
	}
	dh.Set("Content-Description", "Delivery report")
	if err := writePart(mw, dh, ds.String()); err != nil {
		return nil, fmt.Errorf("queue: DSN for %s: %w", e.ID, err)
	}

	// Part 3: the original header (RFC 6522 §4: text/rfc822-headers).
	var oh message.Header
	oh.SetContentType("text/rfc822-headers", nil)
	oh.Set("Content-Description", "Undelivered message headers")
	if err := writePart(mw, oh, string(origHeader)); err != nil {
		return nil, fmt.Errorf("queue: DSN for %s: %w", e.ID, err)
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("queue: DSN for %s: %w", e.ID, err)
	}
	return buf.Bytes(), nil
}

func writePart(mw *message.Writer, h message.Header, body string) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write([]byte(body)); err != nil {
		pw.Close()
		return err
	}
	return pw.Close()
}

// asciiOnly replaces every non-ASCII rune with '?'.
func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0x80 {
			return '?'
		}
		return r
	}, s)
}
