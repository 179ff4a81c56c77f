//go:build !linux

package load

import (
	"errors"
	"net"
)

// tcpProbe needs Linux's TCP_INFO and NETLINK_SOCK_DIAG.
type tcpProbe struct{}

func newTCPProbe() (*tcpProbe, error) {
	return nil, errors.New("tcp probe: only on Linux")
}

func (p *tcpProbe) Close() error { return nil }

func (p *tcpProbe) look(*net.TCPConn) (probeResult, error) {
	return probeResult{}, errors.New("tcp probe: only on Linux")
}
