package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync/atomic"

	"github.com/popgate/popgate/acl"
	"github.com/popgate/popgate/acl/policyd"
	"github.com/popgate/popgate/acl/socketmap"
)

// lookupServers are the live lookup services another MTA can ask instead
// of reading a map file: the Postfix policy delegation server and the
// sendmail socket map. Both read the relay state in effect, so a reload
// changes their answers at once.
type lookupServers struct {
	policy    *policyd.Server
	socketmap *socketmap.Server
}

// policyDecider answers from the policy in effect.
type policyDecider struct{ relay *atomic.Pointer[relayState] }

var _ policyd.Decider = policyDecider{}

func (d policyDecider) CheckRelayClient(r acl.Request) acl.Decision {
	return d.relay.Load().policy.CheckRelayClient(r)
}

// accessMap answers the socket map "access" as the sendmail mirror would.
type accessMap struct {
	relay  *atomic.Pointer[relayState]
	grants *acl.Grants
}

var _ socketmap.Lookuper = accessMap{}

func (m accessMap) Lookup(key string) (string, bool) {
	return acl.SendmailMapValue(m.relay.Load().rules, m.grants, key)
}

// newLookupServers builds the servers configured in s.cfg.
func (s *services) newLookupServers() lookupServers {
	var l lookupServers
	if len(s.cfg.Policy.Listen) > 0 {
		l.policy = policyd.New(policyd.Config{Decider: policyDecider{&s.relay}, Logger: s.logger.With("part", "policy")})
	}
	if len(s.cfg.Socketmap.Listen) > 0 {
		l.socketmap = socketmap.New(socketmap.Config{Map: accessMap{&s.relay, s.grants}, Logger: s.logger.With("part", "socketmap")})
	}
	return l
}

// serveFunc adapts a lookup server's Serve so that its stop at Close is
// no error.
func serveFunc(serve func(net.Listener) error) func(net.Listener) error {
	return func(ln net.Listener) error {
		if err := serve(ln); err != nil && !errors.Is(err, policyd.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// bindSets are the listeners of the servers that are on.
func (l lookupServers) bindSets(cfg *Config) []bindSet {
	var sets []bindSet
	if l.policy != nil {
		sets = append(sets, bindSet{"policy.listen", cfg.Policy.Listen, serveFunc(l.policy.Serve)})
	}
	if l.socketmap != nil {
		sets = append(sets, bindSet{"socketmap.listen", cfg.Socketmap.Listen, serveFunc(l.socketmap.Serve)})
	}
	return sets
}

// close stops both servers.
func (l lookupServers) close() {
	if l.policy != nil {
		l.policy.Close()
	}
	if l.socketmap != nil {
		l.socketmap.Close()
	}
}

// listenAddr binds "host:port" over TCP or "unix:/path" as a unix socket.
// A socket file left by an earlier run is removed first; any other file
// at the path is an error, never deleted.
func listenAddr(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is no socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	return net.Listen("unix", path)
}
