// Package wsclient is a minimal RFC 6455 client made for load generation.
//
// It speaks just enough WebSocket to read tens of millions of small server
// frames cheaply: an HTTP/1.1 upgrade handshake, a frame reader for unmasked
// server frames that reassembles fragmented messages and answers control
// frames, and masked client writes. It never negotiates extensions
// (no compression) and does not validate UTF-8 in text messages.
package wsclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Opcode is a WebSocket frame opcode (RFC 6455 section 5.2).
type Opcode byte

// The opcodes of RFC 6455.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// Close status codes used by this package.
const (
	StatusNormalClosure = 1000
	StatusProtocolError = 1002
	StatusNoStatus      = 1005
	StatusTooBig        = 1009
)

// DefaultMaxMessageSize is the largest message ReadMessage accepts unless
// Conn.MaxMessageSize says otherwise.
const DefaultMaxMessageSize = 1 << 20

// ErrProtocol reports a frame that breaks RFC 6455. The connection is closed
// when ReadMessage returns it.
var ErrProtocol = errors.New("wsclient: protocol error")

// ErrMessageTooBig reports a message longer than Conn.MaxMessageSize.
var ErrMessageTooBig = errors.New("wsclient: message too big")

// CloseError is returned by ReadMessage once the server sent a close frame.
// ReadMessage has already answered it with a close frame of its own.
type CloseError struct {
	Code   int // StatusNoStatus when the frame carried no code.
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsclient: closed by server: %d %q", e.Code, e.Reason)
}

// Conn is a client WebSocket connection.
//
// ReadMessage must be called from one goroutine at a time. WriteText and
// Close may be called concurrently with ReadMessage and with each other.
type Conn struct {
	// MaxMessageSize bounds a reassembled message. Default: 1 MiB.
	MaxMessageSize int

	nc  net.Conn
	br  *bufio.Reader
	msg []byte // reassembly buffer, reused by ReadMessage
	hdr [14]byte

	wmu        sync.Mutex
	wbuf       []byte
	closeSent  bool
	maskSource *rand.ChaCha8
}

func newConn(nc net.Conn, br *bufio.Reader) *Conn {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	binary.LittleEndian.PutUint64(seed[8:], rand.Uint64())
	return &Conn{
		MaxMessageSize: DefaultMaxMessageSize,
		nc:             nc,
		br:             br,
		maskSource:     rand.NewChaCha8(seed),
	}
}

// NetConn returns the underlying connection, for deadlines and addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// ReadMessage returns the next text or binary message. The payload is only
// valid until the next call. Pings are answered with pongs and pongs are
// dropped, including between the fragments of a message. A close frame from
// the server is answered and reported as a *CloseError.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	var (
		msgOp      Opcode
		inFragment bool
	)
	c.msg = c.msg[:0]
	for {
		fin, op, n, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if op >= OpClose {
			if err := c.handleControl(op, n); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case op == OpContinuation && !inFragment:
			return 0, nil, c.fail(StatusProtocolError, fmt.Errorf("%w: continuation frame without a message", ErrProtocol))
		case op != OpContinuation && inFragment:
			return 0, nil, c.fail(StatusProtocolError, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol))
		case op != OpContinuation && op != OpText && op != OpBinary:
			return 0, nil, c.fail(StatusProtocolError, fmt.Errorf("%w: reserved opcode %#x", ErrProtocol, byte(op)))
		}
		if op != OpContinuation {
			msgOp = op
		}
		if n > uint64(c.MaxMessageSize-len(c.msg)) {
			return 0, nil, c.fail(StatusTooBig, fmt.Errorf("%w: over %d bytes", ErrMessageTooBig, c.MaxMessageSize))
		}
		start := len(c.msg)
		c.msg = grow(c.msg, int(n))
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, unexpectedEOF(err)
		}
		if fin {
			return msgOp, c.msg, nil
		}
		inFragment = true
	}
}

// readHeader reads one frame header and checks what RFC 6455 requires of a
// frame sent by a server.
func (c *Conn) readHeader() (fin bool, op Opcode, length uint64, err error) {
	h := c.hdr[:2]
	if _, err := io.ReadFull(c.br, h); err != nil {
		return false, 0, 0, err // io.EOF here means the server closed between frames
	}
	fin = h[0]&0x80 != 0
	op = Opcode(h[0] & 0x0f)
	if h[0]&0x70 != 0 {
		return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: reserved bits set without an extension", ErrProtocol))
	}
	if h[1]&0x80 != 0 {
		return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: masked frame from server", ErrProtocol))
	}
	length = uint64(h[1] & 0x7f)
	switch length {
	case 126:
		ext := c.hdr[2:4]
		if _, err := io.ReadFull(c.br, ext); err != nil {
			return false, 0, 0, unexpectedEOF(err)
		}
		length = uint64(binary.BigEndian.Uint16(ext))
	case 127:
		ext := c.hdr[2:10]
		if _, err := io.ReadFull(c.br, ext); err != nil {
			return false, 0, 0, unexpectedEOF(err)
		}
		length = binary.BigEndian.Uint64(ext)
		if length>>63 != 0 {
			return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: 64-bit length with the top bit set", ErrProtocol))
		}
	}
	if op >= OpClose && (!fin || length > 125) {
		return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: fragmented or oversized control frame", ErrProtocol))
	}
	return fin, op, length, nil
}

// handleControl consumes the payload of a control frame and reacts to it.
func (c *Conn) handleControl(op Opcode, n uint64) error {
	var buf [125]byte
	payload := buf[:n]
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return unexpectedEOF(err)
	}
	switch op {
	case OpPing:
		return c.writeFrame(OpPong, payload)
	case OpPong:
		return nil
	case OpClose:
		ce := &CloseError{Code: StatusNoStatus}
		switch {
		case len(payload) == 1:
			return c.fail(StatusProtocolError, fmt.Errorf("%w: close frame with a 1-byte payload", ErrProtocol))
		case len(payload) >= 2:
			ce.Code = int(binary.BigEndian.Uint16(payload))
			ce.Reason = string(payload[2:])
		}
		echo := payload
		if ce.Code == StatusNoStatus {
			echo = nil
		} else {
			echo = payload[:2]
		}
		// The server may already have closed the TCP connection; the close
		// handshake is best effort on our side.
		_ = c.writeFrame(OpClose, echo)
		_ = c.nc.Close()
		return ce
	}
	return c.fail(StatusProtocolError, fmt.Errorf("%w: reserved control opcode %#x", ErrProtocol, byte(op)))
}

// fail sends a close frame with code, closes the connection and returns err.
func (c *Conn) fail(code int, err error) error {
	_ = c.writeFrame(OpClose, closePayload(code))
	_ = c.nc.Close()
	return err
}

// WriteText sends p as one masked text frame.
func (c *Conn) WriteText(p []byte) error {
	return c.writeFrame(OpText, p)
}

// Close sends a normal-closure close frame, without waiting for the server's
// answer, and closes the connection. A write blocked on a peer that does not
// read delays it by at most a second.
func (c *Conn) Close() error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	werr := c.writeFrame(OpClose, closePayload(StatusNormalClosure))
	cerr := c.nc.Close()
	if werr != nil && !errors.Is(werr, net.ErrClosed) && !errors.Is(werr, errCloseSent) {
		return werr
	}
	if errors.Is(cerr, net.ErrClosed) {
		return nil
	}
	return cerr
}

// CloseNow closes the TCP connection without a close frame.
func (c *Conn) CloseNow() error {
	err := c.nc.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

var errCloseSent = errors.New("wsclient: close frame already sent")

// maskChunk bounds the copy a frame is masked in: a larger payload is
// masked and written a chunk at a time, so a 16 MiB message costs no 16 MiB
// copy. It is a multiple of 4, so the key stays aligned across chunks.
const maskChunk = 64 << 10

// writeFrame writes one masked frame with FIN set. After a close frame it
// refuses to write anything more.
func (c *Conn) writeFrame(op Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errCloseSent
	}
	if op == OpClose {
		c.closeSent = true
	}
	b := c.wbuf[:0]
	b = append(b, 0x80|byte(op))
	switch n := len(p); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], uint32(c.maskSource.Uint64()))
	b = append(b, key[:]...)
	for {
		chunk := p[:min(len(p), maskChunk)]
		p = p[len(chunk):]
		start := len(b)
		b = append(b, chunk...)
		mask(b[start:], key)
		if _, err := c.nc.Write(b); err != nil {
			c.wbuf = b[:0]
			return err
		}
		b = b[:0]
		if len(p) == 0 {
			c.wbuf = b
			return nil
		}
	}
}

func mask(p []byte, key [4]byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}

func closePayload(code int) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(code))
}

// grow extends b by n bytes, reallocating only when the capacity is short.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
