package smtp

import (
	"errors"
	"syscall"

	gosmtp "github.com/emersion/go-smtp"
)

// Errors a Deliverer, Spooler or Storage returns (possibly wrapped) so the
// server can pick the right reply.
var (
	// ErrMailLoop: the message already carries a Delivered-To for one of
	// its mailboxes (554 5.4.6, as Postfix answers).
	ErrMailLoop = errors.New("smtp: mail loop")
	// ErrInsufficientStorage: the mail filesystem is full, or below its
	// reserve (452 4.3.1, RFC 3463 "mail system full"). ENOSPC and EDQUOT
	// from the system count as this too.
	ErrInsufficientStorage = errors.New("smtp: insufficient storage")
)

// Storage tells, before a transaction starts, whether there is room for
// a message of size octets (0: size not announced). An error for which
// errors.Is(err, ErrInsufficientStorage) holds refuses MAIL FROM with 452;
// any other error is logged and the transaction goes on.
type Storage interface {
	CheckRoom(size int64) error
}

var (
	errNoStorage = reply(452, "4.3.1", "Insufficient system storage, try again later")
	errMailLoop  = reply(554, "5.4.6", "Mail loop detected: already delivered to this mailbox")
)

// noSpace reports whether err means the disk (or the user's quota) is full.
func noSpace(err error) bool {
	return errors.Is(err, ErrInsufficientStorage) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// checkRoom refuses a new transaction while the mail filesystem is full.
// It is asked at every MAIL, so popgate accepts again as soon as space
// returns.
func (s *session) checkRoom(opts *gosmtp.MailOptions) error {
	st := s.srv.deps.Storage
	if st == nil {
		return nil
	}
	var size int64
	if opts != nil {
		size = opts.Size
	}
	err := st.CheckRoom(size)
	switch {
	case err == nil:
		return nil
	case noSpace(err):
		s.log.Warn("smtp insufficient storage", "ip", s.tc.ip.String(), "size", size, "err", err)
		return errNoStorage
	}
	s.log.Error("smtp storage check failed", "err", err)
	return nil
}

// deliveryReply turns the failures of a message's delivery that the client
// must hear about precisely (full disk, mail loop) into their replies; the
// cause is logged here, since wrapErr logs only internal errors.
func (s *session) deliveryReply(err error) error {
	var se *gosmtp.SMTPError
	switch {
	case err == nil || errors.As(err, &se):
		return err
	case noSpace(err):
		s.log.Warn("smtp insufficient storage", "ip", s.tc.ip.String(), "err", err)
		return errNoStorage
	case errors.Is(err, ErrMailLoop):
		s.log.Warn("smtp mail loop", "ip", s.tc.ip.String(), "err", err)
		return errMailLoop
	}
	return err
}
