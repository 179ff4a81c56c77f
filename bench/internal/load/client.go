package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/gorilla/websocket"
	"github.com/wsroom/wsroom/bench/internal/wsclient"
)

// The WebSocket clients the load tool can run on (Config.Client).
const (
	// ClientWsroom is internal/wsclient: one reusable buffer per
	// connection, frames parsed in place; cheap enough to read tens of
	// millions of frames.
	ClientWsroom = "wsroom"
	// ClientGorilla is github.com/gorilla/websocket read the way common Go
	// clients read it: one ReadMessage call per message, which allocates
	// the message, on one goroutine per connection.
	ClientGorilla = "gorilla"
)

// wsConn is what a run needs of a client connection, whichever library
// provides it. ReadMessage is called from one goroutine at a time and
// WriteText from another; CloseNow may be called from any goroutine.
type wsConn interface {
	// ReadMessage returns the next data message and whether it is text.
	// Control frames are handled inside, fragmented messages reassembled.
	// The payload may be reused by the next call.
	ReadMessage() (text bool, payload []byte, err error)
	// WriteText sends p as one text message.
	WriteText(p []byte) error
	// CloseNow closes the TCP connection without a close frame.
	CloseNow() error
}

// dialFunc opens the TCP connection under a WebSocket client.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialWS opens a WebSocket connection to url with the given client library.
// maxMessage bounds a message read. ctx bounds the dial and the handshake.
func dialWS(ctx context.Context, client, url string, dial dialFunc, maxMessage int) (wsConn, error) {
	switch client {
	case ClientGorilla:
		d := websocket.Dialer{NetDialContext: dial}
		c, resp, err := d.DialContext(ctx, url, nil)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("gorilla: %w", err)
		}
		c.SetReadLimit(int64(maxMessage))
		return gorillaConn{c}, nil
	default:
		c, err := wsclient.Dial(ctx, url, wsclient.Options{DialContext: dial})
		if err != nil {
			return nil, err
		}
		c.MaxMessageSize = maxMessage
		return wsroomConn{c}, nil
	}
}

type wsroomConn struct{ *wsclient.Conn }

func (c wsroomConn) ReadMessage() (bool, []byte, error) {
	op, p, err := c.Conn.ReadMessage()
	return op == wsclient.OpText, p, err
}

// gorillaConn adapts a gorilla connection. Its default handlers answer
// pings and close frames through WriteControl, which may run concurrently
// with WriteMessage.
type gorillaConn struct{ c *websocket.Conn }

func (g gorillaConn) ReadMessage() (bool, []byte, error) {
	typ, p, err := g.c.ReadMessage()
	return typ == websocket.TextMessage, p, err
}

func (g gorillaConn) WriteText(p []byte) error { return g.c.WriteMessage(websocket.TextMessage, p) }

func (g gorillaConn) CloseNow() error {
	err := g.c.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// endKind says how a reading client's connection ended.
type endKind int

const (
	// endClosed: the server sent a close frame (with a code).
	endClosed endKind = iota
	// endReset: the connection ended without a close frame: EOF, possibly
	// in the middle of a frame, or a TCP reset.
	endReset
	// endFailed: this side gave up: a protocol violation, a message over
	// the size limit, or another I/O error.
	endFailed
)

// classifyEnd tells how a read error ended a connection and, for a close
// frame, its code (1005 when the frame carried none).
func classifyEnd(err error) (endKind, int) {
	var wce *wsclient.CloseError
	if errors.As(err, &wce) {
		return endClosed, wce.Code
	}
	var gce *websocket.CloseError
	if errors.As(err, &gce) {
		// gorilla reports an EOF as a CloseError with 1006, a code that
		// no close frame may carry (RFC 6455 section 7.4.1).
		if gce.Code == websocket.CloseAbnormalClosure {
			return endReset, 0
		}
		return endClosed, gce.Code
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return endReset, 0
	}
	return endFailed, 0
}
