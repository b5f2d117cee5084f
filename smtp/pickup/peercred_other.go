//go:build !linux

package pickup

import (
	"errors"
	"net"
)

// peerCred is implemented for Linux (SO_PEERCRED) only: elsewhere the
// socket refuses every caller rather than trust what it claims.
func peerCred(net.Conn) (Cred, error) {
	return Cred{}, errors.New("pickup: peer credentials are only implemented on Linux")
}
