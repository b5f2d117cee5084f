package pickup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxHeaderLine bounds the request line that precedes a message, on the
// socket and in a maildrop file: the envelope of at most a few thousand
// recipients.
const MaxHeaderLine = 256 * 1024

// Request is the envelope a local program hands over with its message.
// It is one JSON line followed by exactly Size octets of message.
type Request struct {
	// From is the envelope sender as given with -f: nil means "the caller",
	// i.e. user@first-local-domain; "" is the null sender.
	From *string `json:"from,omitempty"`
	// FullName is -F: the display name used when the message has no From:.
	FullName string `json:"full_name,omitempty"`
	// Rcpts are the recipients, possibly unqualified ("root").
	Rcpts []string `json:"rcpts"`
	// Size is the length of the message that follows the request line.
	Size int64 `json:"size"`
}

// Sysexits codes (sysexits.h) that sendmail(1) callers understand.
const (
	ExOK          = 0
	ExUsage       = 64 // command line usage error
	ExDataErr     = 65 // data format error
	ExNoInput     = 66 // cannot open input
	ExNoUser      = 67 // addressee unknown
	ExUnavailable = 69 // service unavailable
	ExSoftware    = 70 // internal software error
	ExOSErr       = 71 // system error
	ExCantCreat   = 73 // can't create (user) output file
	ExIOErr       = 74 // input/output error
	ExTempFail    = 75 // temporary failure; user is invited to retry
	ExProtocol    = 76 // remote error in protocol
	ExNoPerm      = 77 // permission denied
	ExConfig      = 78 // configuration error
)

// Error is a refusal with the sysexits code the sendmail command exits
// with. Its message is safe to show to the calling user.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Temporary reports whether retrying later may succeed.
func (e *Error) Temporary() bool { return e.Code == ExTempFail }

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Reply is the server's answer on the socket: an id once the message is
// durably stored, or an error with its sysexits code.
type Reply struct {
	ID    string `json:"id,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// errMalformed marks a request line that is not a valid request.
var errMalformed = errors.New("pickup: malformed request")

// ParseRequest decodes a request line (without its newline) and checks it
// for what any message needs; limits that depend on the configuration are
// the server's.
func ParseRequest(line []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: trailing data", errMalformed)
	}
	if r.Size < 0 {
		return Request{}, fmt.Errorf("%w: negative size", errMalformed)
	}
	if len(r.Rcpts) == 0 {
		return Request{}, fmt.Errorf("%w: no recipients", errMalformed)
	}
	return r, nil
}

// readRequest reads one bounded request line from br and returns it with
// the octets it took, newline included.
func readRequest(br *bufio.Reader) (Request, int, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxHeaderLine {
			return Request{}, 0, fmt.Errorf("%w: request line longer than %d octets", errMalformed, MaxHeaderLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return Request{}, 0, fmt.Errorf("%w: no request line", errMalformed)
		}
		return Request{}, 0, fmt.Errorf("pickup: read request: %w", err)
	}
	r, err := ParseRequest(bytes.TrimSuffix(line, []byte("\n")))
	return r, len(line), err
}

// encodeRequest is the request line, newline included.
func encodeRequest(r Request) []byte {
	b, _ := json.Marshal(r) // a Request always marshals
	return append(b, '\n')
}
