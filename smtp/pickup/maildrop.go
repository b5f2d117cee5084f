package pickup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The maildrop is where `popgate sendmail` leaves mail while the server is
// down, as Postfix's postdrop does. The directory is mode 1733 (anyone may
// create files, nobody but the server may list them, the sticky bit keeps
// users from removing each other's files). A file is written as the
// caller: mode 0600 while it is written, fsynced, then 0744: the owner's x
// bit says "complete" (Postfix's convention), the r bits let a server
// running as another user read it. The server trusts the file's owner as
// it trusts SO_PEERCRED, and only a plain file with one link: a hard link
// to someone else's file is refused.

// MaildropMode is the maildrop directory's mode: 1733.
const MaildropMode = fs.ModeSticky | 0o733

// EnsureMaildrop creates dir if needed and sets its mode (whatever the
// umask), for the server to call at start.
func EnsureMaildrop(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pickup: maildrop: %w", err)
	}
	if err := os.Chmod(dir, MaildropMode); err != nil {
		return fmt.Errorf("pickup: maildrop: %w", err)
	}
	return nil
}

// completeMode is a finished maildrop file's mode.
const completeMode = 0o744

// maildropPrefix starts every maildrop file name; refused files are renamed
// with badPrefix for the operator.
const (
	maildropPrefix = "m."
	badPrefix      = "bad."
)

// WriteMaildrop leaves one message in dir for the server to deliver when
// it starts. body must yield exactly req.Size octets. It returns the file
// name once the file is fsynced.
func WriteMaildrop(dir string, req Request, body io.Reader) (string, error) {
	name := maildropPrefix + newID()
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("pickup: maildrop: %w", err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("pickup: maildrop %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 64*1024)
	if _, err := w.Write(encodeRequest(req)); err != nil {
		return fail(err)
	}
	n, err := io.Copy(w, body)
	if err != nil {
		return fail(err)
	}
	if n != req.Size {
		return fail(fmt.Errorf("message is %d octets, not %d", n, req.Size))
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(completeMode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("pickup: maildrop %s: %w", path, err)
	}
	// The directory is not readable to ordinary users, so only root and
	// the server's user can fsync it; ext4 and xfs commit a new file's
	// name with the file's own fsync.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return name, nil
}

// Drain delivers every complete message in the maildrop dir and removes
// each file only after Submit returned its id (the message is on disk in
// the maildirs and the queue). A file that can never be delivered (bad
// format, unknown recipient, too large) is renamed bad.* and logged; a
// temporary failure leaves the file for the next round.
func (s *Server) Drain(ctx context.Context, dir string) (delivered int, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("pickup: maildrop: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if ctx.Err() != nil {
			return delivered, ctx.Err()
		}
		if !strings.HasPrefix(e.Name(), maildropPrefix) {
			continue
		}
		ok, err := s.pickupFile(ctx, dir, e.Name())
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			delivered++
		}
	}
	if delivered > 0 {
		syncDir(dir)
	}
	return delivered, errors.Join(errs...)
}

// pickupFile delivers one maildrop file; ok is true when it was delivered
// and removed.
func (s *Server) pickupFile(ctx context.Context, dir, name string) (ok bool, err error) {
	path := filepath.Join(dir, name)
	log := s.log.With("via", "maildrop", "file", name)
	refuse := func(why string) (bool, error) {
		log.Error("pickup maildrop file refused", "reason", why)
		if err := os.Rename(path, filepath.Join(dir, badPrefix+name)); err != nil {
			return false, fmt.Errorf("pickup: maildrop: set aside %s: %w", name, err)
		}
		return false, nil
	}
	// O_NOFOLLOW: a symlink is never followed to a file its creator could
	// not read; O_NONBLOCK: a FIFO does not hang the server.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return refuse("a symbolic link")
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pickup: maildrop: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("pickup: maildrop: %w", err)
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	switch {
	case sys == nil:
		return false, fmt.Errorf("pickup: maildrop %s: no owner information", name)
	case !st.Mode().IsRegular():
		return refuse("not a plain file")
	case uint64(sys.Nlink) != 1:
		return refuse("a file with more than one link")
	case st.Mode().Perm()&0o100 == 0:
		return false, nil // still being written
	}
	// From here the file is a plain file of its owner's: a refusal is
	// worth telling them, as sendmail would bounce.
	refuseAndTell := func(why string) (bool, error) {
		ok, err := refuse(why)
		if err == nil {
			s.notifyOwner(ctx, sys.Uid, badPrefix+name, why)
		}
		return ok, err
	}
	if st.Size() > s.cfg.MaxMessageBytes+MaxHeaderLine {
		return refuseAndTell("larger than smtp.max_message_bytes")
	}
	br := bufio.NewReaderSize(f, 64*1024)
	req, lineLen, err := readRequest(br)
	if err != nil {
		return refuseAndTell(err.Error())
	}
	if int64(lineLen)+req.Size != st.Size() {
		return refuseAndTell(fmt.Sprintf("file is %d octets, its request says %d", st.Size(), int64(lineLen)+req.Size))
	}
	id, err := s.Submit(ctx, Cred{UID: sys.Uid, Via: "maildrop"}, req, br)
	var pe *Error
	switch {
	case errors.As(err, &pe) && !pe.Temporary():
		return refuseAndTell(pe.Msg)
	case err != nil:
		log.Warn("pickup maildrop delivery deferred", "err", err)
		return false, err
	}
	if err := os.Remove(path); err != nil {
		// Delivered but not removed: the next round would deliver it
		// again. Say so loudly; a duplicate beats a loss.
		log.Error("pickup maildrop file not removed", "id", id, "err", err)
		return true, fmt.Errorf("pickup: maildrop: remove %s: %w", name, err)
	}
	log.Info("pickup maildrop delivered", "id", id, "uid", sys.Uid)
	return true, nil
}

// notifyOwner tells the owner of a refused maildrop file, in their local
// mailbox, why their mail was not delivered: `sendmail` had already told
// them it would be. An owner without a mailbox is only logged.
func (s *Server) notifyOwner(ctx context.Context, uid uint32, file, why string) {
	addr := strings.ToLower(s.cfg.LookupUser(uid)) + "@" + s.domain
	log := s.log.With("uid", uid, "rcpt", addr, "file", file)
	boxes, err := s.deps.Recipients.Resolve(ctx, addr)
	if err != nil || len(boxes) == 0 {
		log.Warn("pickup maildrop refusal not notified", "err", err)
		return
	}
	now := s.cfg.Now()
	id := newID()
	var b strings.Builder
	fmt.Fprintf(&b, "Received: by %s (popgate, maildrop notice) id %s; %s\r\n", s.cfg.Hostname, id, now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", s.cfg.Hostname)
	fmt.Fprintf(&b, "To: <%s>\r\nSubject: Undelivered mail: %s\r\n", addr, headerSafeText(why))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%s@%s>\r\nAuto-Submitted: auto-replied\r\n\r\n", now.Format(time.RFC1123Z), id, s.cfg.Hostname)
	fmt.Fprintf(&b, "A message you handed to sendmail while popgate was not running\r\n"+
		"could not be delivered:\r\n\r\n    %s\r\n\r\nThe postmaster keeps it on %s as %s.\r\n", headerSafeText(why), s.cfg.Hostname, file)
	if err := s.deps.Deliverer.Deliver(ctx, "", boxes, strings.NewReader(b.String())); err != nil {
		log.Error("pickup maildrop refusal not notified", "err", err)
		return
	}
	log.Info("pickup maildrop refusal notified", "reason", why)
}

// headerSafeText keeps a reason on one printable line.
func headerSafeText(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// Run drains dir now, whenever a file in it is completed (inotify, on
// Linux), and every interval until ctx is done.
func (s *Server) Run(ctx context.Context, dir string, interval time.Duration) {
	kick := make(chan struct{}, 1)
	if stop, err := watchDir(dir, kick); err != nil {
		s.log.Info("pickup maildrop polled only", "every", interval, "err", err)
	} else {
		defer stop()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Drain(ctx, dir); err != nil && ctx.Err() == nil {
			s.log.Warn("pickup maildrop drain", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
