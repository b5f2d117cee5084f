package pickup

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ErrNotRunning says that no server answers on the socket: the caller
// should use the maildrop.
var ErrNotRunning = errors.New("pickup: the popgate server is not running")

// maxReply bounds the server's reply line.
const maxReply = 64 * 1024

// Send hands one message to the running server over the socket at path
// and returns its id once the server has it on disk. body must yield
// exactly req.Size octets. A refusal is an *Error; a server that is not
// there is ErrNotRunning.
func Send(ctx context.Context, path string, req Request, body io.Reader, timeout time.Duration) (string, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNotRunning, path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	w := bufio.NewWriterSize(c, 64*1024)
	_, werr := w.Write(encodeRequest(req))
	if werr == nil {
		_, werr = io.Copy(w, body)
	}
	if werr == nil {
		werr = w.Flush()
	}
	// Read the reply even after a failed write: a server that refused
	// the request early has said why.
	br := bufio.NewReaderSize(io.LimitReader(c, maxReply), 4096)
	line, rerr := br.ReadBytes('\n')
	if rerr != nil {
		if werr != nil {
			return "", &Error{Code: ExTempFail, Msg: fmt.Sprintf("handing the message to popgate failed: %v", werr)}
		}
		return "", &Error{Code: ExTempFail, Msg: fmt.Sprintf("no answer from popgate: %v", rerr)}
	}
	var r Reply
	if err := json.Unmarshal(line, &r); err != nil {
		return "", &Error{Code: ExProtocol, Msg: fmt.Sprintf("malformed answer from popgate: %v", err)}
	}
	if r.Error != "" {
		code := r.Code
		if code == 0 {
			code = ExTempFail
		}
		return "", &Error{Code: code, Msg: r.Error}
	}
	return r.ID, nil
}
