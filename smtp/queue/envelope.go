package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// envelopeVersion is written into every .env; a file with another version
// is not guessed at but quarantined.
const envelopeVersion = 1

// maxEnvelopeBytes bounds an .env file read from disk.
const maxEnvelopeBytes = 4 << 20

// State is a recipient's delivery state.
type State string

// Recipient states.
const (
	// StatePending: not delivered yet; retried.
	StatePending State = "pending"
	// StateSent: the peer accepted the message for this recipient.
	StateSent State = "sent"
	// StateFailed: permanently failed; the DSN is not sent yet.
	StateFailed State = "failed"
	// StateBounced: permanently failed and reported (or dropped for a
	// null sender).
	StateBounced State = "bounced"
)

// RecipientStatus is one recipient's delivery state as kept in the
// envelope file and shown by List.
type RecipientStatus struct {
	Addr  string `json:"addr"`
	State State  `json:"state"`
	// Status is the last enhanced status code (RFC 3463), e.g. "4.4.1".
	Status string `json:"status,omitempty"`
	// LastError is the last failure: the peer's reply or a local reason.
	LastError string `json:"last_error,omitempty"`
	// RemoteMTA is the host that gave LastError, if any.
	RemoteMTA   string    `json:"remote_mta,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
}

// envelope is the content of an .env file.
type envelope struct {
	Version int               `json:"version"`
	ID      string            `json:"id"`
	From    string            `json:"from"`
	Rcpts   []RecipientStatus `json:"rcpts"`
	Created time.Time         `json:"created"`
	Size    int64             `json:"size"`
	// BodyCRC is the body's CRC-32C, checked at start for a message
	// whose only envelope is the one in its .msg (see spoolmeta.go).
	BodyCRC  uint32    `json:"body_crc,omitempty"`
	EightBit bool      `json:"eight_bit,omitempty"`
	Attempts int       `json:"attempts"`
	NextTry  time.Time `json:"next_try"`
	Warned   bool      `json:"warned,omitempty"`
}

// needsUTF8 reports whether the envelope needs SMTPUTF8 (RFC 6531 §3.4).
func (e *envelope) needsUTF8() bool {
	if !isASCII(e.From) {
		return true
	}
	for _, r := range e.Rcpts {
		if !isASCII(r.Addr) {
			return true
		}
	}
	return false
}

// count returns how many recipients are in state s.
func (e *envelope) count(s State) int {
	n := 0
	for _, r := range e.Rcpts {
		if r.State == s {
			n++
		}
	}
	return n
}

func encodeEnvelope(e *envelope) ([]byte, error) {
	b, err := json.MarshalIndent(e, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("queue: encode envelope %s: %w", e.ID, err)
	}
	return append(b, '\n'), nil
}

// decodeEnvelope parses and checks an .env file. Anything it accepts is
// safe to act on: a valid id, clean addresses, known states.
func decodeEnvelope(b []byte) (*envelope, error) {
	if len(b) > maxEnvelopeBytes {
		return nil, fmt.Errorf("queue: envelope: %d bytes, over the %d limit", len(b), maxEnvelopeBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e envelope
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("queue: envelope: %w", err)
	}
	if dec.More() {
		return nil, errors.New("queue: envelope: trailing data")
	}
	if e.Version != envelopeVersion {
		return nil, fmt.Errorf("queue: envelope: version %d, want %d", e.Version, envelopeVersion)
	}
	if !validID(e.ID) {
		return nil, fmt.Errorf("queue: envelope: bad id %q", e.ID)
	}
	if err := checkAddr(e.From, true); err != nil {
		return nil, fmt.Errorf("queue: envelope %s: sender: %w", e.ID, err)
	}
	if len(e.Rcpts) == 0 {
		return nil, fmt.Errorf("queue: envelope %s: no recipients", e.ID)
	}
	for i, r := range e.Rcpts {
		if err := checkAddr(r.Addr, false); err != nil {
			return nil, fmt.Errorf("queue: envelope %s: recipient %d: %w", e.ID, i, err)
		}
		switch r.State {
		case StatePending, StateSent, StateFailed, StateBounced:
		default:
			return nil, fmt.Errorf("queue: envelope %s: recipient %d: unknown state %q", e.ID, i, r.State)
		}
	}
	if e.Size < 0 || e.Attempts < 0 {
		return nil, fmt.Errorf("queue: envelope %s: negative size or attempts", e.ID)
	}
	if e.Created.IsZero() {
		return nil, fmt.Errorf("queue: envelope %s: no creation time", e.ID)
	}
	return &e, nil
}

// maxAddrBytes is the longest path accepted (RFC 5321 §4.5.3.1.3: 256
// octets including the angle brackets).
const maxAddrBytes = 254

// checkAddr rejects addresses that would break the SMTP dialogue or a
// DSN header: control characters, angle brackets, over-long paths. The
// SMTP server has checked syntax already; this is the queue's own guard.
func checkAddr(a string, nullOK bool) error {
	if a == "" {
		if nullOK {
			return nil
		}
		return errors.New("empty address")
	}
	if len(a) > maxAddrBytes {
		return fmt.Errorf("address of %d bytes, over %d", len(a), maxAddrBytes)
	}
	if strings.ContainsAny(a, "<> \t") {
		return fmt.Errorf("address %q contains a space or angle bracket", a)
	}
	for _, c := range []byte(a) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("address %q contains a control character", a)
		}
	}
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 {
		return fmt.Errorf("address %q has no local part or domain", a)
	}
	return nil
}

// validID reports whether id is a queue id: 1-64 lower-case hex digits,
// so it can never name a path outside the queue directory.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func validateLine(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("%q contains a line break", s)
	}
	return nil
}
