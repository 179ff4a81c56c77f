package load

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/wsroom/wsroom/internal/rawws"
)

// rawServer is a WebSocket server written frame by frame, so that tests
// decide exactly what goes on the wire: fragments, control frames between
// them, and how a connection ends (close frame, FIN or reset).
type rawServer struct {
	ln    net.Listener
	serve func(p *rawPeer)

	mu    sync.Mutex
	peers map[*rawPeer]bool
	wg    sync.WaitGroup
}

// rawPeer is one server-side connection.
type rawPeer struct {
	nc   net.Conn
	br   *bufio.Reader
	path string
	wmu  sync.Mutex
}

// startRawServer listens on 127.0.0.1 and runs serve for each upgraded
// connection; sndbuf, when positive, is the SO_SNDBUF of the accepted
// connections. Everything is closed when the test ends.
func startRawServer(t *testing.T, sndbuf int, serve func(p *rawPeer)) *rawServer {
	t.Helper()
	lc := net.ListenConfig{}
	if sndbuf > 0 {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, sndbuf)
			}); cerr != nil {
				return cerr
			}
			return err
		}
	}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, serve: serve, peers: map[*rawPeer]bool{}}
	s.wg.Go(s.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for p := range s.peers {
			_ = p.nc.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "ws://" + s.ln.Addr().String() }

func (s *rawServer) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		p := &rawPeer{nc: nc, br: bufio.NewReader(nc)}
		s.mu.Lock()
		s.peers[p] = true
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				_ = nc.Close()
				s.mu.Lock()
				delete(s.peers, p)
				s.mu.Unlock()
			}()
			if p.handshake() == nil {
				s.serve(p)
			}
		})
	}
}

func (p *rawPeer) handshake() error {
	req, err := http.ReadRequest(p.br)
	if err != nil {
		return err
	}
	p.path = req.URL.Path
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = fmt.Fprintf(p.nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	return err
}

// The opcodes of RFC 6455.
const (
	opCont  = rawws.OpContinuation
	opText  = rawws.OpText
	opClose = rawws.OpClose
	opPing  = rawws.OpPing
	opPong  = rawws.OpPong
)

// frame encodes an unmasked server frame.
func frame(fin bool, op byte, payload []byte) []byte {
	return rawws.Encode(rawws.Frame{Fin: fin, Opcode: op, Payload: payload})
}

// closeFrame encodes a close frame with code.
func closeFrame(code int) []byte {
	return frame(true, opClose, binary.BigEndian.AppendUint16(nil, uint16(code)))
}

// write sends bytes as one write, so that concurrent writers never
// interleave inside them.
func (p *rawPeer) write(b ...[]byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	var all []byte
	for _, x := range b {
		all = append(all, x...)
	}
	_, err := p.nc.Write(all)
	return err
}

// errClosedByClient ends readMessage at the client's close frame.
var errClosedByClient = errors.New("client sent a close frame")

// readFrame reads one client frame and unmasks it.
func (p *rawPeer) readFrame() (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(p.br, ext[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(p.br, ext[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	var key [4]byte
	if _, err := io.ReadFull(p.br, key[:]); err != nil {
		return false, 0, nil, err
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(p.br, payload); err != nil {
		return false, 0, nil, err
	}
	for i := range payload {
		payload[i] ^= key[i&3]
	}
	return fin, op, payload, nil
}

// readMessage returns the next text message from the client, reassembled,
// answering pings and counting pongs in pongs (if not nil).
func (p *rawPeer) readMessage(pongs *atomic.Int64) ([]byte, error) {
	var msg []byte
	for {
		fin, op, payload, err := p.readFrame()
		if err != nil {
			return nil, err
		}
		switch op {
		case opClose:
			return nil, errClosedByClient
		case opPing:
			if err := p.write(frame(true, opPong, payload)); err != nil {
				return nil, err
			}
			continue
		case opPong:
			if pongs != nil {
				pongs.Add(1)
			}
			continue
		}
		msg = append(msg, payload...)
		if fin {
			return msg, nil
		}
	}
}

// awaitPong reads frames until a pong.
func (p *rawPeer) awaitPong() error {
	for {
		_, op, _, err := p.readFrame()
		if err != nil || op == opPong {
			return err
		}
	}
}

// reset ends the connection with a TCP reset.
func (p *rawPeer) reset() {
	if tc, ok := p.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = p.nc.Close()
}
