// Package rawws is a raw RFC 6455 WebSocket client for tests. It frames by
// hand, so that a test can send what a correct client never would: reserved
// bits and opcodes, fragmented or oversized control frames, unmasked frames,
// invalid close payloads, and any byte stream chopped at any point.
//
// A [Conn] is synchronous: it starts no goroutine, and nothing happens on the
// connection except inside a call. Every call that waits has a deadline. A
// Conn is not safe for concurrent use.
//
// Frames are built and decoded by [Encode], [EncodeClient] and [Decode]; a
// Conn writes bytes ([Conn.WriteRaw], [Conn.WriteChopped]) or frames
// ([Conn.WriteFrame]) and reads one server frame at a time
// ([Conn.ReadFrame]), never reassembling messages.
package rawws

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Opcodes of RFC 6455, section 5.2. Any other value of the 4-bit field is
// reserved; [Frame.Opcode] may hold one.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Reserved bits as they appear in [Frame.Rsv], numbered as Autobahn
// numbers them: rsv = 1 is RSV3, rsv = 4 is RSV1.
const (
	Rsv1 byte = 4
	Rsv2 byte = 2
	Rsv3 byte = 1
)

// NoStatus is the code [ParseClose] reports for an empty close payload
// (1005, "no status received", which is never sent on the wire).
const NoStatus = 1005

// MaxPayload bounds the payload length [Decode] and [Conn.ReadFrame] accept,
// so that a corrupt length cannot make them allocate without limit.
const MaxPayload = 64 << 20

const (
	// dialTimeout bounds the TCP connect and, separately, the handshake.
	dialTimeout = 5 * time.Second
	// writeTimeout bounds each write call.
	writeTimeout = 10 * time.Second
	// maxErrorBody bounds the body Dial keeps from a refused handshake.
	maxErrorBody = 1 << 20
)

// acceptGUID is the GUID of RFC 6455, section 1.3.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Errors of the package. Match them with errors.Is.
var (
	// ErrHandshake reports a handshake response that is not a valid
	// 101 Switching Protocols for the request sent.
	ErrHandshake = errors.New("rawws: handshake failed")
	// ErrProtocol reports bytes that do not form a frame: a payload
	// length with the most significant bit set, or over [MaxPayload].
	ErrProtocol = errors.New("rawws: malformed frame")
)

// Frame is one WebSocket frame, as sent or as received.
//
// Rsv holds the three reserved bits in its low 3 bits ([Rsv1], [Rsv2],
// [Rsv3]); Opcode holds the 4-bit opcode. Masked is the mask bit and
// MaskKey the masking key; Payload is always the unmasked payload, whatever
// Masked says. Only the low bits of Rsv and Opcode are encoded.
type Frame struct {
	Fin     bool
	Rsv     byte
	Opcode  byte
	Masked  bool
	MaskKey [4]byte
	Payload []byte
}

// String describes f for test messages: its opcode, flags, length and the
// start of its payload.
func (f Frame) String() string {
	var b strings.Builder
	b.WriteString(OpcodeName(f.Opcode))
	if !f.Fin {
		b.WriteString(" FIN=0")
	}
	if f.Rsv&7 != 0 {
		fmt.Fprintf(&b, " RSV=%d", f.Rsv&7)
	}
	if f.Masked {
		b.WriteString(" masked")
	}
	if f.Opcode == OpClose && len(f.Payload) != 1 {
		code, reason, _ := ParseClose(f.Payload)
		fmt.Fprintf(&b, " code=%d reason=%q", code, reason)
		return b.String()
	}
	fmt.Fprintf(&b, " len=%d", len(f.Payload))
	if len(f.Payload) > 0 {
		fmt.Fprintf(&b, " %s", Preview(f.Payload))
	}
	return b.String()
}

// OpcodeName returns the name of an opcode ("text", "ping", ...) or
// "opcode N" for a reserved one.
func OpcodeName(op byte) string {
	switch op & 0xF {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode %d", op&0xF)
}

// Preview quotes at most the first 32 bytes of p, for test messages.
func Preview(p []byte) string {
	const n = 32
	if len(p) <= n {
		return fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("%q...", p[:n])
}

// Encode returns the wire bytes of f exactly as given: the mask bit is
// f.Masked and, when it is set, the payload is masked with f.MaskKey. The
// payload length always takes the shortest form. Encode does not check
// anything, so it builds frames a correct client never sends, such as an
// unmasked one:
//
//	c.WriteRaw(rawws.Encode(rawws.Frame{Fin: true, Opcode: rawws.OpText, Payload: p}))
func Encode(f Frame) []byte {
	n := len(f.Payload)
	out := make([]byte, 0, 14+n)
	b0 := (f.Rsv&7)<<4 | f.Opcode&0xF
	if f.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if f.Masked {
		b1 = 0x80
	}
	switch {
	case n < 126:
		out = append(out, b0, b1|byte(n))
	case n <= 0xFFFF:
		out = append(out, b0, b1|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, b0, b1|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !f.Masked {
		return append(out, f.Payload...)
	}
	out = append(out, f.MaskKey[:]...)
	start := len(out)
	out = append(out, f.Payload...)
	mask(out[start:], f.MaskKey)
	return out
}

// EncodeClient returns f as a client must send it: masked, with f.MaskKey
// when f.Masked is set and with a fresh random key otherwise.
func EncodeClient(f Frame) []byte {
	if !f.Masked {
		f.Masked = true
		_, _ = rand.Read(f.MaskKey[:])
	}
	return Encode(f)
}

func mask(p []byte, key [4]byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}

// Decode reads one frame from r and returns it with its payload unmasked.
// It returns io.EOF if r ends before the frame's first byte, and an error
// matching io.ErrUnexpectedEOF if r ends inside the frame.
func Decode(r io.Reader) (Frame, error) {
	var hdr [14]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return Frame{}, err
	}
	need := headerLen(hdr[:2])
	if _, err := io.ReadFull(r, hdr[2:need]); err != nil {
		return Frame{}, noEOF(err)
	}
	f, n, err := parseHeader(hdr[:need])
	if err != nil {
		return Frame{}, err
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, noEOF(err)
	}
	if f.Masked {
		mask(f.Payload, f.MaskKey)
	}
	return f, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// headerLen returns the length of the header whose first two bytes are b.
func headerLen(b []byte) int {
	n := 2
	switch b[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// parseHeader parses a complete header and returns the frame without
// payload and the payload's length.
func parseHeader(h []byte) (Frame, int, error) {
	f := Frame{
		Fin:    h[0]&0x80 != 0,
		Rsv:    h[0] >> 4 & 7,
		Opcode: h[0] & 0xF,
		Masked: h[1]&0x80 != 0,
	}
	var n uint64
	i := 2
	switch l := h[1] & 0x7F; l {
	case 126:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
		i += 2
	case 127:
		n = binary.BigEndian.Uint64(h[2:])
		i += 8
		if n>>63 != 0 {
			return Frame{}, 0, fmt.Errorf("%w: 64-bit payload length with the most significant bit set", ErrProtocol)
		}
	default:
		n = uint64(l)
	}
	if n > MaxPayload {
		return Frame{}, 0, fmt.Errorf("%w: payload length %d over %d", ErrProtocol, n, MaxPayload)
	}
	if f.Masked {
		copy(f.MaskKey[:], h[i:i+4])
	}
	return f, int(n), nil
}

// ClosePayload returns a close frame's payload: code as 2 bytes, big
// endian, then reason. It checks neither: any 16-bit code and any bytes
// may be sent. For a close frame without a code, use an empty payload.
func ClosePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// ParseClose parses a close frame's payload. An empty payload gives
// [NoStatus] and no error. A 1-byte payload is an error. A reason that is
// not valid UTF-8 is an error, returned with the code and the reason.
func ParseClose(payload []byte) (code int, reason string, err error) {
	switch len(payload) {
	case 0:
		return NoStatus, "", nil
	case 1:
		return 0, "", fmt.Errorf("rawws: close payload of 1 byte")
	}
	code = int(binary.BigEndian.Uint16(payload))
	reason = string(payload[2:])
	if !utf8.ValidString(reason) {
		return code, reason, fmt.Errorf("rawws: close reason is not valid UTF-8: %q", reason)
	}
	return code, reason, nil
}

// Conn is the client end of a WebSocket connection made by [Dial]. It
// starts no goroutine; it is not safe for concurrent use.
type Conn struct {
	nc  net.Conn
	buf []byte // bytes received and not yet returned as frames
}

// Dial connects to addr ("host:port") over TCP and performs the opening
// handshake by hand for path: a GET with Host, Upgrade: websocket,
// Connection: Upgrade, a random Sec-WebSocket-Key and
// Sec-WebSocket-Version: 13, then the fields of header. A field of header
// replaces the default of the same name; a field present in header with no
// values removes the default.
//
// On a 101 response whose Upgrade, Connection and Sec-WebSocket-Accept
// fields are right, Dial returns the Conn and the response. Bytes the server
// sent right after the response are kept and come out of the first reads.
//
// On any other status Dial returns a nil Conn, the response with its body
// (at most 1 MiB) readable after the connection is closed, and an error
// matching [ErrHandshake]. On a 101 with a wrong field it returns a nil
// Conn, the response and an error matching ErrHandshake. The connect and
// the handshake are each bounded by 5 seconds.
func Dial(addr, path string, header http.Header) (*Conn, *http.Response, error) {
	nc, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("rawws: dial %s: %w", addr, err)
	}
	c, resp, err := handshake(nc, addr, path, header)
	if err != nil {
		_ = nc.Close()
		return nil, resp, err
	}
	return c, resp, nil
}

// Client performs the opening handshake, as [Dial] does, on a connection
// the caller opened (a TLS connection, or a TCP one with socket options
// set), naming host in the Host field. On failure the caller closes nc.
func Client(nc net.Conn, host, path string, header http.Header) (*Conn, *http.Response, error) {
	return handshake(nc, host, path, header)
}

func handshake(nc net.Conn, addr, path string, header http.Header) (*Conn, *http.Response, error) {
	if err := nc.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
		return nil, nil, fmt.Errorf("rawws: handshake: %w", err)
	}
	var rawKey [16]byte
	_, _ = rand.Read(rawKey[:])
	fields := http.Header{
		"Host":                  {addr},
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-Websocket-Key":     {base64.StdEncoding.EncodeToString(rawKey[:])},
		"Sec-Websocket-Version": {"13"},
	}
	for k, v := range header {
		k = http.CanonicalHeaderKey(k)
		if len(v) == 0 {
			delete(fields, k)
			continue
		}
		fields[k] = v
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\n", path)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		for _, v := range fields[k] {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := nc.Write(req.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("rawws: handshake: write request: %w", err)
	}

	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, nil, fmt.Errorf("rawws: handshake: read response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil, resp, fmt.Errorf("%w: status %s", ErrHandshake, resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return nil, resp, fmt.Errorf("%w: Upgrade: %q", ErrHandshake, resp.Header.Get("Upgrade"))
	}
	if !hasToken(resp.Header.Values("Connection"), "upgrade") {
		return nil, resp, fmt.Errorf("%w: Connection: %q", ErrHandshake, resp.Header.Values("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(fields.Get("Sec-WebSocket-Key")); got != want {
		return nil, resp, fmt.Errorf("%w: Sec-WebSocket-Accept %q, want %q", ErrHandshake, got, want)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, resp, fmt.Errorf("rawws: handshake: %w", err)
	}
	c := &Conn{nc: nc}
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		c.buf = append([]byte(nil), early...)
	}
	return c, resp, nil
}

// AcceptKey returns the Sec-WebSocket-Accept value for a
// Sec-WebSocket-Key value.
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// NetConn returns the underlying connection, for socket options or a
// half-close. Reading from it directly bypasses the bytes the Conn holds.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the TCP connection at once, without a closing handshake.
func (c *Conn) Close() error { return c.nc.Close() }

// WriteRaw writes p in one write call, with a deadline of 10 seconds.
func (c *Conn) WriteRaw(p []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("rawws: write: %w", err)
	}
	if _, err := c.nc.Write(p); err != nil {
		return fmt.Errorf("rawws: write: %w", err)
	}
	return nil
}

// WriteFrame writes f as a client must send it (see [EncodeClient]), in one
// write call. To send an unmasked frame, write [Encode]'s bytes with
// [Conn.WriteRaw].
func (c *Conn) WriteFrame(f Frame) error { return c.WriteRaw(EncodeClient(f)) }

// WriteChopped writes p in pieces of chunk bytes (the last may be shorter),
// each in its own write call, waiting delay between two pieces. With
// TCP_NODELAY, which Go sets by default, each piece normally leaves in its
// own segment. It stops at the first failed write.
func (c *Conn) WriteChopped(p []byte, chunk int, delay time.Duration) error {
	if chunk <= 0 {
		return fmt.Errorf("rawws: chunk size %d: must be positive", chunk)
	}
	for i := 0; i < len(p); i += chunk {
		if i > 0 && delay > 0 {
			time.Sleep(delay)
		}
		if err := c.WriteRaw(p[i:min(i+chunk, len(p))]); err != nil {
			return err
		}
	}
	return nil
}

// ReadFrame returns the next frame the server sent, waiting at most
// timeout for it to arrive whole. It does not reassemble messages, check
// the frame against the protocol or answer pings.
//
// On timeout the error matches os.ErrDeadlineExceeded and nothing is lost:
// a frame that had only partly arrived is returned whole by a later call.
// When the server has closed the connection, ReadFrame returns io.EOF once
// every complete frame has been returned (an error matching
// io.ErrUnexpectedEOF if the connection ended inside a frame), or the
// reset error (syscall.ECONNRESET) if the server reset it.
func (c *Conn) ReadFrame(timeout time.Duration) (Frame, error) {
	deadline := time.Now().Add(timeout)
	for {
		if f, n, ok, err := c.parse(); err != nil {
			return Frame{}, err
		} else if ok {
			c.buf = c.buf[n:]
			if len(c.buf) == 0 {
				c.buf = nil
			}
			return f, nil
		}
		if err := c.fill(deadline); err != nil {
			if errors.Is(err, io.EOF) && len(c.buf) > 0 {
				return Frame{}, fmt.Errorf("rawws: connection closed inside a frame (%d bytes pending): %w", len(c.buf), io.ErrUnexpectedEOF)
			}
			return Frame{}, err
		}
	}
}

// parse decodes the frame at the start of c.buf, if it is complete, and
// returns it with the number of bytes it takes.
func (c *Conn) parse() (Frame, int, bool, error) {
	if len(c.buf) < 2 {
		return Frame{}, 0, false, nil
	}
	hl := headerLen(c.buf)
	if len(c.buf) < hl {
		return Frame{}, 0, false, nil
	}
	f, n, err := parseHeader(c.buf[:hl])
	if err != nil {
		return Frame{}, 0, false, err
	}
	if len(c.buf) < hl+n {
		return Frame{}, 0, false, nil
	}
	f.Payload = append([]byte(nil), c.buf[hl:hl+n]...)
	if f.Masked {
		mask(f.Payload, f.MaskKey)
	}
	return f, hl + n, true, nil
}

// fill reads what the socket has, at least one byte, before deadline. It
// returns io.EOF when the server closed the connection.
func (c *Conn) fill(deadline time.Time) error {
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("rawws: read: %w", err)
	}
	if cap(c.buf)-len(c.buf) < 32<<10 {
		c.buf = slices.Grow(c.buf, 64<<10)
	}
	n, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if n > 0 {
		return nil
	}
	if err == io.EOF {
		return io.EOF
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("rawws: read: %w", err)
}

// ExpectEOF waits at most timeout for the server to close the TCP
// connection, and returns the frames that arrived before it did. The error
// is nil when the connection ended with EOF or a reset
// ([IsClosedByPeer]) and every byte before it formed whole frames; it
// matches os.ErrDeadlineExceeded when the connection was still open at the
// deadline, and io.ErrUnexpectedEOF when it ended inside a frame.
func (c *Conn) ExpectEOF(timeout time.Duration) ([]Frame, error) {
	deadline := time.Now().Add(timeout)
	var frames []Frame
	for {
		f, err := c.ReadFrame(time.Until(deadline))
		if err == nil {
			frames = append(frames, f)
			continue
		}
		if IsClosedByPeer(err) {
			return frames, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return frames, fmt.Errorf("rawws: connection still open after %v: %w", timeout, err)
		}
		return frames, err
	}
}

// IsClosedByPeer reports whether err, from [Conn.ReadFrame], says the
// server closed the connection: io.EOF or a connection reset.
func IsClosedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
