package wsroomtest

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/internal/rawws"
)

// Opcodes of RFC 6455, for [Frame].
const (
	OpContinuation = rawws.OpContinuation
	OpText         = rawws.OpText
	OpBinary       = rawws.OpBinary
	OpClose        = rawws.OpClose
	OpPing         = rawws.OpPing
	OpPong         = rawws.OpPong
)

// Frame is one WebSocket frame as a [RawClient] writes it: any opcode, any
// reserved bits, fragmented or not. It is masked, as a client must, unless
// Unmasked says otherwise.
type Frame struct {
	Fin      bool
	Rsv      byte // the three reserved bits: 4, 2, 1
	Opcode   byte
	Unmasked bool
	Payload  []byte
}

// RawClient is a client that does nothing unless told: it neither reads
// nor answers pings, so on its own it is a dead peer, and it writes frames
// by hand, invalid ones too. It is closed when the test ends.
type RawClient struct {
	t       TB
	path    string
	c       *rawws.Conn
	timeout time.Duration
}

// DialRaw performs the handshake to path by hand. It fails the test if the
// handshake fails.
func (s *Server) DialRaw(path string, opts ...DialOption) *RawClient {
	s.t.Helper()
	c, resp, err := s.dialRaw(path, opts)
	if err != nil {
		s.t.Fatalf("wsroomtest: raw dial %s: %v (%s)", path, err, describe(resp))
	}
	s.t.Cleanup(func() { _ = c.Close() })
	return &RawClient{t: s.t, path: path, c: c, timeout: s.Timeout}
}

func (s *Server) dialRaw(path string, opts []DialOption) (*rawws.Conn, *http.Response, error) {
	cfg := buildDialConfig(opts)
	if len(cfg.subprotocols) > 0 {
		cfg.header.Set("Sec-WebSocket-Protocol", strings.Join(cfg.subprotocols, ", "))
	}
	if cfg.host != "" {
		cfg.header.Set("Host", cfg.host)
	}
	return rawws.Dial(s.Addr(), path, cfg.header)
}

// WriteFrame writes one frame.
func (r *RawClient) WriteFrame(f Frame) {
	r.t.Helper()
	raw := rawws.Frame{Fin: f.Fin, Rsv: f.Rsv, Opcode: f.Opcode, Payload: f.Payload}
	var b []byte
	if f.Unmasked {
		b = rawws.Encode(raw)
	} else {
		b = rawws.EncodeClient(raw)
	}
	r.WriteBytes(b)
}

// WriteText writes one text message in one frame, whatever its bytes.
func (r *RawClient) WriteText(payload string) {
	r.t.Helper()
	r.WriteFrame(Frame{Fin: true, Opcode: OpText, Payload: []byte(payload)})
}

// WriteBytes writes raw bytes, whatever they are.
func (r *RawClient) WriteBytes(b []byte) {
	r.t.Helper()
	if err := r.c.WriteRaw(b); err != nil {
		r.t.Fatalf("wsroomtest: %s: raw write: %v", r.path, err)
	}
}

// ExpectText reads the next frame and checks that it is the whole text
// message want.
func (r *RawClient) ExpectText(want string) {
	r.t.Helper()
	f, err := r.c.ReadFrame(r.timeout)
	if err != nil {
		r.t.Fatalf("wsroomtest: %s: waiting for %q: %v", r.path, abbrev(want), err)
	}
	if f.Opcode != OpText || !f.Fin || string(f.Payload) != want {
		r.t.Fatalf("wsroomtest: %s: got %v, want the text %q", r.path, f, abbrev(want))
	}
}

// ExpectClose reads frames until a close frame, checks its code, and
// checks that the server then closes the TCP connection, all within the
// timeout. Data frames before the close frame are skipped.
func (r *RawClient) ExpectClose(code websocket.StatusCode) {
	r.t.Helper()
	deadline := time.Now().Add(r.timeout)
	for {
		f, err := r.c.ReadFrame(time.Until(deadline))
		if err != nil {
			r.t.Fatalf("wsroomtest: %s: waiting for close %d: %v", r.path, code, err)
		}
		if f.Opcode != OpClose {
			continue
		}
		got, reason, _ := rawws.ParseClose(f.Payload)
		if websocket.StatusCode(got) != code {
			r.t.Fatalf("wsroomtest: %s: closed with %d %q, want %d", r.path, got, reason, code)
		}
		if frames, err := r.c.ExpectEOF(time.Until(deadline)); err != nil {
			r.t.Fatalf("wsroomtest: %s: after the close frame: %v (frames %v), want the connection closed", r.path, err, frames)
		}
		return
	}
}

// ReadFrame returns the next frame the server sent, waiting at most the
// timeout for it. It neither reassembles messages nor answers pings. It
// returns an error instead of failing the test, so that a goroutine of the
// test's own may read (one at a time): one whose errors.Is matches io.EOF
// or syscall.ECONNRESET when the server has closed the connection, and
// os.ErrDeadlineExceeded when nothing came in time.
func (r *RawClient) ReadFrame() (Frame, error) {
	f, err := r.c.ReadFrame(r.timeout)
	if err != nil {
		return Frame{}, fmt.Errorf("wsroomtest: %s: %w", r.path, err)
	}
	return Frame{Fin: f.Fin, Rsv: f.Rsv, Opcode: f.Opcode, Unmasked: !f.Masked, Payload: f.Payload}, nil
}

// Close closes the TCP connection at once, without a close frame.
func (r *RawClient) Close() { _ = r.c.Close() }

// Reset aborts the TCP connection with a reset: the server's next read or
// write on it fails with ECONNRESET, as when a peer's host drops the
// connection's state.
func (r *RawClient) Reset() {
	r.t.Helper()
	if tcp, ok := r.c.NetConn().(*net.TCPConn); ok {
		if err := tcp.SetLinger(0); err != nil {
			r.t.Fatalf("wsroomtest: %s: reset: %v", r.path, err)
		}
	}
	_ = r.c.Close()
}
