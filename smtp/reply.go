package smtp

import (
	"errors"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"
)

// Replies with fixed wording. Internal causes never reach the client.
var (
	errInternal     = reply(451, "4.3.0", "Internal error, try again later")
	errTooManyErrs  = reply(421, "4.7.0", "Too many errors, closing connection")
	errRelayDenied  = reply(554, "5.7.1", "Relaying denied")
	errNoSuchUser   = reply(550, "5.1.1", "No such user here")
	errBadRcptSyn   = reply(553, "5.1.3", "Bad destination mailbox address syntax")
	errBadFromSyn   = reply(553, "5.1.7", "Bad sender mailbox address syntax")
	errRouting      = reply(553, "5.7.1", "Routing syntax (%, !, quoted @) not accepted")
	errQuotedLocal  = reply(553, "5.1.3", "Quoted local parts are not accepted")
	errTooLongAddr  = reply(553, "5.1.3", "Address too long")
	errLiteralRcpt  = reply(553, "5.7.1", "Address literals are not accepted as recipients")
	errNeedUTF8     = reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
	errNotOwner     = reply(553, "5.7.1", "Sender address not owned by authenticated user")
	errNUL          = reply(554, "5.6.0", "Message contains NUL characters")
	errReadFailed   = reply(451, "4.4.2", "Error reading message data, try again")
	errAuthFailed   = reply(535, "5.7.8", "Authentication credentials invalid")
	errAuthThrottle = reply(454, "4.7.0", "Too many failed authentications, try again later")
	errAuthTemp     = reply(454, "4.7.0", "Temporary authentication failure")
	errAuthTLS      = reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
	errAuthMalform  = reply(501, "5.5.2", "Malformed authentication data")
	errAuthIdentity = reply(535, "5.7.8", "Authorization identity must match the user")
)

func reply(code int, enhanced, text string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: parseEnhanced(enhanced), Message: text}
}

// parseEnhanced parses "x.y.z" (RFC 3463); a malformed code yields
// EnhancedCodeNotSet, which go-smtp renders from the reply class.
func parseEnhanced(s string) gosmtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return gosmtp.EnhancedCodeNotSet
	}
	var ec gosmtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || len(p) > 3 {
			return gosmtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 {
		return gosmtp.EnhancedCodeNotSet
	}
	return ec
}

// verdictError builds the reply for a Reject or TempFail verdict: the
// verdict's own code, enhanced code and text when they are consistent with
// the action, the defaults otherwise. TempFail always yields a 4xx reply.
func verdictError(v Verdict, code int, enhanced, text string) *gosmtp.SMTPError {
	if v.Action == ActionTempFail {
		code, enhanced, text = 451, "4.7.1", "Try again later"
	}
	class := code / 100
	if v.Code/100 == class && v.Code >= 400 && v.Code <= 599 {
		code = v.Code
	}
	e := reply(code, enhanced, text)
	if ec := parseEnhanced(v.Enhanced); ec != gosmtp.EnhancedCodeNotSet && ec[0] == class {
		e.EnhancedCode = ec
	}
	if t := safeText(v.Text); t != "" {
		e.Message = t
	}
	return e
}

// safeText keeps a reply text on one printable ASCII line.
func safeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = ' '
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// wrapErr is the one place where an error becomes an SMTP reply: SMTP
// errors pass through (counted towards MaxErrors), anything else is logged
// with its cause and answered with 451 4.3.0.
func (s *session) wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) {
		s.log.Error("smtp internal error", "op", op, "err", err)
		se = errInternal
	}
	if se.Code < 400 {
		return se
	}
	if int(s.tc.errors.Add(1)) >= s.srv.cfg.MaxErrors {
		s.log.Warn("smtp too many errors", "op", op, "last", se.Code)
		s.tc.closeAfterWrite.Store(true)
		return errTooManyErrs
	}
	return se
}
