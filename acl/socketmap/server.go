// Package socketmap is a sendmail socket map server (the netstring
// protocol of sendmail's "socket" map class, which Postfix's socketmap:
// table speaks too). It answers the map named "access" with the keys and
// values of popgate's sendmail access.db mirror, live: "connect:IP" of a
// POP3-granted client is RELAY the moment the login succeeds.
package socketmap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/popgate/popgate/acl/internal/connsrv"
)

// MapName is the one map served: sendmail's FEATURE(`access_db') names
// its map "access", and the Postfix table name says it last.
const MapName = "access"

// Defaults for Config's zero values.
const (
	DefaultMaxConns       = 100
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultRequestTimeout = 10 * time.Second
)

// Lookuper answers one key of the access map: acl.SendmailMapValue over
// the rules and grants in effect.
type Lookuper interface {
	Lookup(key string) (value string, ok bool)
}

// Config configures a Server.
type Config struct {
	Map            Lookuper
	Logger         *slog.Logger  // nil: discard
	MaxConns       int           // 0: DefaultMaxConns
	IdleTimeout    time.Duration // 0: DefaultIdleTimeout
	RequestTimeout time.Duration // 0: DefaultRequestTimeout
}

// Server answers socket map lookups.
type Server struct {
	cfg  Config
	srv  connsrv.Server
	next atomic.Uint64
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = connsrv.ErrServerClosed

// New builds a Server; Serve runs it on a listener.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	s := &Server{cfg: cfg}
	s.srv = connsrv.Server{Name: "socketmap", MaxConns: cfg.MaxConns, Logger: cfg.Logger, Handle: s.handle}
	return s
}

// Serve answers connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Close stops every listener and connection.
func (s *Server) Close() error { return s.srv.Close() }

// handle runs one connection: sendmail and Postfix keep it open for
// many lookups.
func (s *Server) handle(c net.Conn) {
	log := s.cfg.Logger.With("proto", "socketmap", "remote", c.RemoteAddr().String(), "conn", s.next.Add(1))
	r := bufio.NewReaderSize(c, 512)
	var out []byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		req, err := readNetstring(r, maxRequest)
		var bad *errMalformed
		switch {
		case errors.As(err, &bad):
			log.Warn("socketmap request malformed", "err", bad.msg)
			_ = s.write(c, appendNetstring(out[:0], "PERM malformed request"))
			return // a broken netstring stream cannot be resynchronised
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			log.Warn("socketmap connection closed", "err", err)
			return
		}
		out = appendNetstring(out[:0], s.answer(req, log))
		if err := s.write(c, out); err != nil {
			log.Warn("socketmap connection closed", "err", err)
			return
		}
	}
}

func (s *Server) write(c net.Conn, b []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
	_, err := c.Write(b)
	return err
}

// answer is the reply to one request "MAPNAME KEY": "OK value",
// "NOTFOUND " or "PERM reason" (sendmail's cf/README, "socket" map).
// A request that parses as a netstring but not as a lookup is answered
// PERM and logged; the connection stays.
func (s *Server) answer(req []byte, log *slog.Logger) string {
	name, key, ok := bytes.Cut(req, []byte(" "))
	switch {
	case !ok:
		log.Warn("socketmap request malformed", "err", "no space between map name and key")
		return "PERM malformed request: want \"MAPNAME KEY\""
	case string(name) != MapName:
		log.Warn("socketmap request malformed", "err", "unknown map", "map", clip(name))
		return "PERM unknown map, only \"" + MapName + "\" is served"
	case len(key) == 0 || bytes.IndexByte(key, 0) >= 0:
		log.Warn("socketmap request malformed", "err", "empty key or NUL byte")
		return "PERM malformed key"
	}
	v, found := s.cfg.Map.Lookup(string(key))
	log.Debug("socketmap answer", "key", clip(key), "found", found, "value", v)
	if !found {
		return "NOTFOUND "
	}
	return "OK " + v
}

func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
