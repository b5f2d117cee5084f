package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The control socket lets `popgate grants`, `queue`, `health`, `report`
// and `access why` ask the running server. Access control is the socket
// file's permission (0600, owner only), as for sendmail's control socket.
// The protocol is one JSON request line and one JSON reply line.

const (
	// controlTimeout bounds one request on the control socket.
	controlTimeout = 10 * time.Second
	// maxControlRequest bounds one request line.
	maxControlRequest = 64 * 1024
)

type controlRequest struct {
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`
}

type controlReply struct {
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// controlHandler answers one control command; its result is sent as JSON.
type controlHandler func(ctx context.Context, args []string) (any, error)

// controlServer serves the control socket.
type controlServer struct {
	path     string
	handlers map[string]controlHandler
	logger   *slog.Logger
	ln       net.Listener
	wg       sync.WaitGroup // handlers in flight

	mu      sync.Mutex
	serving chan struct{} // closed when serve returns; nil before serve
}

// listenControl creates the socket (replacing a stale one) with mode 0600.
func listenControl(path string, handlers map[string]controlHandler, logger *slog.Logger) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control: %s: another popgate is running", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return &controlServer{path: path, handlers: handlers, logger: logger, ln: ln}, nil
}

// serve accepts until the listener is closed.
func (s *controlServer) serve(ctx context.Context) {
	done := make(chan struct{})
	s.mu.Lock()
	s.serving = done
	s.mu.Unlock()
	defer close(done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c)
		}()
	}
}

func (s *controlServer) close() {
	s.ln.Close()
	// Wait for the accept loop first: only then can no wg.Add race the
	// Wait below.
	s.mu.Lock()
	done := s.serving
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	s.wg.Wait()
	_ = os.Remove(s.path)
}

func (s *controlServer) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 1024), maxControlRequest)
	var reply controlReply
	var req controlRequest
	switch {
	case !sc.Scan():
		return
	case json.Unmarshal(sc.Bytes(), &req) != nil:
		reply.Error = "malformed request"
	default:
		h, ok := s.handlers[req.Cmd]
		if !ok {
			reply.Error = fmt.Sprintf("unknown control command %q", req.Cmd)
			break
		}
		res, err := h(ctx, req.Args)
		if err != nil {
			reply.Error = err.Error()
			break
		}
		b, err := json.Marshal(res)
		if err != nil {
			s.logger.Error("control reply", "cmd", req.Cmd, "err", err)
			reply.Error = "internal error"
			break
		}
		reply.Result = b
	}
	b, _ := json.Marshal(reply)
	_, _ = c.Write(append(b, '\n'))
}

// errNotRunning says that no server answers on the control socket.
var errNotRunning = errors.New("popgate is not running (no answer on the control socket)")

// callControl sends one command to the running server and decodes its
// result into out (which may be nil).
func callControl(ctx context.Context, path, cmd string, args []string, out any) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errNotRunning, path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(controlTimeout))
	b, _ := json.Marshal(controlRequest{Cmd: cmd, Args: args})
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("control: send: %w", err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 64<<20)
	if !sc.Scan() {
		return fmt.Errorf("control: no reply from %s", path)
	}
	var reply controlReply
	if err := json.Unmarshal(sc.Bytes(), &reply); err != nil {
		return fmt.Errorf("control: malformed reply: %w", err)
	}
	if reply.Error != "" {
		return errors.New(reply.Error)
	}
	if out != nil && len(reply.Result) > 0 {
		if err := json.Unmarshal(reply.Result, out); err != nil {
			return fmt.Errorf("control: decode reply: %w", err)
		}
	}
	return nil
}
