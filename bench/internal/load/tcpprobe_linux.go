package load

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// tcpProbe tells whether the server ended a TCP connection that the client
// never reads, without reading from it.
//
// It looks at both ends of the connection. The client's own socket
// (getsockopt TCP_INFO) is in CLOSE_WAIT once the server's FIN arrived and
// in CLOSE after a reset. But a FIN travels behind the data the server has
// already written, and a client that never reads has a full receive buffer
// and a zero window: the FIN of a server that closes with unsent data stays
// queued in the server's kernel and the client's socket stays ESTABLISHED,
// for minutes. So the probe also looks up the server's end of the same
// connection through NETLINK_SOCK_DIAG (the server runs on this host): it
// leaves ESTABLISHED (for FIN_WAIT1 and on) the moment the server closes,
// and disappears when the server resets it.
type tcpProbe struct {
	diag int // NETLINK_SOCK_DIAG socket
	seq  atomic.Uint32
}

func newTCPProbe() (*tcpProbe, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("tcp probe: netlink socket: %w", err)
	}
	// The kernel answers at once; the timeout only guards against a
	// kernel that never does.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("tcp probe: %w", err)
	}
	return &tcpProbe{diag: fd}, nil
}

func (p *tcpProbe) Close() error { return unix.Close(p.diag) }

// look reads the state of both ends of nc.
func (p *tcpProbe) look(nc *net.TCPConn) (probeResult, error) {
	var res probeResult
	rc, err := nc.SyscallConn()
	if err != nil {
		return res, err
	}
	var infoErr error
	err = rc.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if infoErr == nil {
			res.local = info.State
		}
	})
	if err != nil {
		return res, err
	}
	if infoErr != nil {
		return res, fmt.Errorf("tcp probe: TCP_INFO: %w", infoErr)
	}
	local, ok1 := nc.LocalAddr().(*net.TCPAddr)
	remote, ok2 := nc.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return res, errors.New("tcp probe: not a TCP connection")
	}
	// The server's end: its local address is our remote one.
	res.peer, res.peerExists, err = p.lookup(remote, local)
	return res, err
}

// sockDiagReqLen is sizeof(struct nlmsghdr) + sizeof(struct
// inet_diag_req_v2).
const sockDiagReqLen = 16 + 56

// lookup asks the kernel for the state of the TCP socket whose local
// address is src and remote address dst.
func (p *tcpProbe) lookup(src, dst *net.TCPAddr) (state uint8, found bool, err error) {
	family := uint8(unix.AF_INET6)
	srcIP, dstIP := src.IP.To16(), dst.IP.To16()
	if s4, d4 := src.IP.To4(), dst.IP.To4(); s4 != nil && d4 != nil {
		family, srcIP, dstIP = unix.AF_INET, s4, d4
	}
	seq := p.seq.Add(1)
	ne := binary.NativeEndian
	var b [sockDiagReqLen]byte
	ne.PutUint32(b[0:], sockDiagReqLen)
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], seq)
	// struct inet_diag_req_v2 at 16.
	b[16] = family
	b[17] = unix.IPPROTO_TCP
	ne.PutUint32(b[20:], ^uint32(0)) // every state
	// struct inet_diag_sockid at 24: ports and addresses big-endian.
	binary.BigEndian.PutUint16(b[24:], uint16(src.Port))
	binary.BigEndian.PutUint16(b[26:], uint16(dst.Port))
	copy(b[28:44], srcIP)
	copy(b[44:60], dstIP)
	ne.PutUint32(b[64:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(b[68:], ^uint32(0))
	if err := unix.Sendto(p.diag, b[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false, fmt.Errorf("tcp probe: sock_diag request: %w", err)
	}
	var resp [8192]byte
	for range 8 { // skip answers to earlier, timed-out requests
		n, _, err := unix.Recvfrom(p.diag, resp[:], 0)
		if err != nil {
			return 0, false, fmt.Errorf("tcp probe: sock_diag answer: %w", err)
		}
		if n < 16+4 {
			return 0, false, errors.New("tcp probe: short sock_diag answer")
		}
		if ne.Uint32(resp[8:]) != seq {
			continue
		}
		switch ne.Uint16(resp[4:]) {
		case unix.NLMSG_ERROR:
			errno := unix.Errno(-int32(ne.Uint32(resp[16:])))
			if errno == unix.ENOENT {
				return 0, false, nil
			}
			return 0, false, fmt.Errorf("tcp probe: sock_diag: %w", errno)
		case unix.SOCK_DIAG_BY_FAMILY:
			// struct inet_diag_msg: family, state, ...
			return resp[17], true, nil
		default:
			return 0, false, fmt.Errorf("tcp probe: unexpected netlink message type %d", ne.Uint16(resp[4:]))
		}
	}
	return 0, false, errors.New("tcp probe: no sock_diag answer to this request")
}
