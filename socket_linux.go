//go:build linux && (amd64 || arm64)

package wsroom

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"
)

// What the Linux kernel tells and allows about a TCP socket.

// probe reads a TCP socket's progress from the kernel: TCP_INFO's
// tcpi_bytes_acked (Linux 4.1 and later) and SIOCOUTQ, the bytes not yet
// acknowledged by the peer.
type probe struct {
	rc syscall.RawConn // nil when the connection is not TCP or the kernel too old
}

// tcpiBytesAcked is the offset of tcpi_bytes_acked in struct tcp_info, an
// append-only kernel ABI.
const tcpiBytesAcked = 120

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (Linux 3.12 and later).
const tcpNotSentLowat = 25

// newProbe returns the probe of nc's TCP connection, and limits what that
// socket holds unsent to unsentLimit bytes: the kernel's send buffer,
// which autotuning grows to megabytes, would otherwise take a whole large
// message at once and put a pong or a close frame behind all of it. What
// the peer has not yet acknowledged is limited by its receive window, not
// by this.
func newProbe(nc net.Conn) probe {
	tcp, ok := rawConn(nc).(*net.TCPConn)
	if !ok {
		return probe{}
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return probe{}
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, unsentLimit)
	})
	p := probe{rc: rc}
	if !p.sample().ok {
		return probe{}
	}
	return p
}

func (p probe) ok() bool { return p.rc != nil }

// progress is what the socket says about the peer.
type progress struct {
	acked       uint64 // bytes the peer acknowledged, ever
	outstanding uint64 // bytes sent or queued that it has not acknowledged
	ok          bool
}

func (p probe) sample() progress {
	if p.rc == nil {
		return progress{}
	}
	var s progress
	err := p.rc.Control(func(fd uintptr) {
		var info [256]byte
		size := uint32(len(info))
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 || size < tcpiBytesAcked+8 {
			return
		}
		var outq int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&outq))); errno != 0 {
			return
		}
		s = progress{acked: binary.NativeEndian.Uint64(info[tcpiBytesAcked:]), outstanding: uint64(max(outq, 0)), ok: true}
	})
	if err != nil {
		return progress{}
	}
	return s
}
