// This file holds what the TCP probe decides, apart from the Linux system
// calls that read the states (tcpprobe_linux.go).

package load

// The TCP states of include/net/tcp_states.h.
const (
	tcpEstablished = 1
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpTimeWait    = 6
	tcpClose       = 7
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpListen      = 10
	tcpClosing     = 11
)

// How a server cut a connection.
const (
	cutFIN = "fin" // the server closed it (a FIN sent, or queued behind unsent data)
	cutRST = "rst" // the server reset it, or its end of it is gone
)

// probeResult is one look at a connection.
type probeResult struct {
	local      uint8 // the client's TCP state
	peer       uint8 // the server's TCP state; 0 when its socket was not found
	peerExists bool
}

// cut interprets a look: "" while the connection is up, else cutFIN or
// cutRST. peerKnown says the server's end was found established before, so
// that its absence means it is gone (rather than on another host).
func (r probeResult) cut(peerKnown bool) string {
	switch r.local {
	case tcpCloseWait:
		return cutFIN
	case tcpClose:
		return cutRST
	}
	if !peerKnown {
		return ""
	}
	switch {
	case !r.peerExists, r.peer == tcpClose, r.peer == tcpListen:
		return cutRST
	case r.peer == tcpFinWait1, r.peer == tcpFinWait2, r.peer == tcpClosing,
		r.peer == tcpTimeWait, r.peer == tcpLastAck:
		return cutFIN
	}
	return ""
}
