package wsroom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Read waits for the next message from the peer, text or binary. It is the
// tutorial's explicit read loop:
//
//	for {
//		msg, err := c.Read(ctx)
//		if err != nil {
//			return // the connection is gone and has left its rooms
//		}
//		...
//	}
//
// A connection must be read for as long as it is open: Read also answers
// the peer's pings, takes the pongs of the server's own pings and the
// peer's close frame.
//
// Read checks every frame against RFC 6455. A peer that breaks it, sends
// text that is not valid UTF-8 (checked as the bytes arrive, so a bad byte
// fails at once, not at the end of a long message), or a message over the
// read limit is failed: closed with 1002, 1007 or 1009, and Read returns an
// error matching [ErrProtocol] and [ErrClosed].
//
// Once the connection starts closing, by either side, Read returns no more
// messages: it reads on only to complete the close handshake, then fails.
// Every error ends the connection for good: it has then left its rooms, and
// later calls return the same error. The error matches [ErrClosed] if this
// side closed it; websocket.CloseStatus returns the code of the close frame
// that ended it, whoever sent it.
//
// Cancelling ctx closes the connection with 1001 (Going Away) and makes
// Read return ctx's error, so pass a context that lives as long as the
// connection, never the request's: net/http cancels that one when the
// handler returns.
func (c *Conn) Read(ctx context.Context) (Message, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.readErr != nil {
		return Message{}, c.readErr
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.cancelRead(ctx) })
		defer stop()
	}
	for {
		msg, err := c.readMessage()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return Message{}, c.endRead(err)
		}
		if !c.isClosing() {
			c.m.stats.received.Add(1)
			return msg, nil
		}
		// A message that was still arriving when the close started is
		// never delivered.
	}
}

// readMessage reads frames until it has a whole data message, answering
// control frames on the way. It must be called with readMu held.
func (c *Conn) readMessage() (Message, error) {
	var (
		data      []byte
		inMessage bool
		binary    bool
		discard   bool // closing: the message is read only to be dropped
		text      utf8Checker
	)
	for {
		h, err := c.readHeader()
		if err != nil {
			return Message{}, err
		}
		if h.rsv != 0 {
			return Message{}, c.protocolError(1002, "reserved bits set")
		}
		if !h.masked {
			return Message{}, c.protocolError(1002, "unmasked frame from a client")
		}
		switch h.opcode {
		case opPing, opPong, opClose:
			if err := c.readControl(h); err != nil {
				return Message{}, err
			}
			continue
		case opText, opBinary:
			if inMessage {
				return Message{}, c.protocolError(1002, "new message before the previous one ended")
			}
			inMessage, binary, discard = true, h.opcode == opBinary, c.isClosing()
		case opContinuation:
			if !inMessage {
				return Message{}, c.protocolError(1002, "continuation frame without a message")
			}
		default:
			return Message{}, c.protocolError(1002, fmt.Sprintf("reserved opcode %d", h.opcode))
		}
		if int64(len(data))+h.length > c.m.cfg.readLimit {
			return Message{}, c.protocolError(1009, "message over the read limit")
		}
		if discard {
			if err := c.discard(h.length); err != nil {
				return Message{}, err
			}
		} else if data, err = c.readPayload(data, h, binary, &text); err != nil {
			return Message{}, err
		}
		if !h.fin {
			continue
		}
		if !binary && !text.complete() {
			return Message{}, c.protocolError(1007, "text message is not UTF-8")
		}
		return received(binary, data), nil
	}
}

// readHeader reads one frame header.
func (c *Conn) readHeader() (frameHeader, error) {
	var b [maxHeader]byte
	if _, err := io.ReadFull(c.br, b[:2]); err != nil {
		return frameHeader{}, err
	}
	n := headerLen(b[1])
	if _, err := io.ReadFull(c.br, b[2:n]); err != nil {
		return frameHeader{}, unexpectedEOF(err)
	}
	c.countIn(n)
	h, ok := parseHeader(b[:n])
	if !ok {
		return frameHeader{}, c.protocolError(1002, "frame length with the top bit set")
	}
	return h, nil
}

// minReadBuffer is the least a message buffer grows by.
const minReadBuffer = 512

// readPayload appends a data frame's payload to data as the socket
// delivers it, unmasking it and, for text, checking UTF-8 on each read.
// Memory grows with the bytes that arrived, not with the length the header
// announced, so a peer cannot reserve the read limit by announcing it.
func (c *Conn) readPayload(data []byte, h frameHeader, binary bool, text *utf8Checker) ([]byte, error) {
	pos := 0
	for remaining := h.length; remaining > 0; {
		if len(data) == cap(data) {
			data = growFor(data, remaining)
		}
		start := len(data)
		end := start + int(min(remaining, int64(cap(data)-start)))
		n, err := c.br.Read(data[start:end])
		if n > 0 {
			chunk := data[start : start+n]
			pos = unmask(chunk, h.key, pos)
			data = data[:start+n]
			remaining -= int64(n)
			c.countIn(n)
			if !binary && !text.next(chunk) {
				return nil, c.protocolError(1007, "text message is not UTF-8")
			}
		}
		if err != nil && remaining > 0 {
			return nil, unexpectedEOF(err)
		}
	}
	return data, nil
}

// growFor returns data with room for more bytes: the whole frame if it is
// small, else at least double, never more than the frame needs.
func growFor(data []byte, frameRemaining int64) []byte {
	const exactUpTo = 64 << 10
	want := int64(len(data)) + frameRemaining
	if frameRemaining > exactUpTo {
		want = min(want, int64(max(2*cap(data), exactUpTo)))
	}
	want = max(want, int64(len(data)+minReadBuffer))
	grown := make([]byte, len(data), want)
	copy(grown, data)
	return grown
}

// discard reads and drops n payload bytes.
func (c *Conn) discard(n int64) error {
	for n > 0 {
		k, err := c.br.Discard(int(min(n, 1<<20)))
		n -= int64(k)
		c.countIn(k)
		if err != nil {
			return unexpectedEOF(err)
		}
	}
	return nil
}

// readControl reads and handles a ping, pong or close frame.
func (c *Conn) readControl(h frameHeader) error {
	if !h.fin {
		return c.protocolError(1002, "fragmented control frame")
	}
	if h.length > maxControlPayload {
		return c.protocolError(1002, "control frame longer than 125 bytes")
	}
	var buf [maxControlPayload]byte
	p := buf[:h.length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return unexpectedEOF(err)
	}
	c.countIn(len(p))
	unmask(p, h.key, 0)
	switch h.opcode {
	case opPing:
		c.queuePong(p)
	case opPong:
		c.gotPong(p)
	case opClose:
		cp, code, why := parseClosePayload(p)
		if code != 0 {
			return c.protocolError(code, why)
		}
		return c.peerClosed(cp)
	}
	return nil
}

// protocolError fails the connection with code, after what is already
// queued to it, and returns the error Read reports.
func (c *Conn) protocolError(code StatusCode, why string) error {
	c.m.stats.protocolErrors.Add(1)
	c.m.cfg.logger.Info("wsroom: peer broke the protocol", "conn", c.id, "status", int(code), "err", why)
	cause := fmt.Errorf("%w: %w: %s: %w", ErrClosed, ErrProtocol, why, closeErr(code, ""))
	c.m.startClose(c, closeRequest{status: closePayload{code: code}, flush: true, fail: true, cause: cause})
	return cause
}

// endRead records why reading ended, once, and returns the error every
// Read reports from then on. It must be called with readMu held.
func (c *Conn) endRead(err error) error {
	if c.readErr == nil {
		c.readErr = c.m.readEnded(c, err)
	}
	return c.readErr
}

// cancelRead runs when a Read's context ends: the connection is closed and
// the blocked read is woken.
func (c *Conn) cancelRead(ctx context.Context) {
	cause := fmt.Errorf("%w: read cancelled: %w", ErrClosed, ctx.Err())
	c.m.startClose(c, closeRequest{status: closePayload{code: StatusShutdown}, flush: true, cause: cause})
	_ = c.netConn.SetReadDeadline(time.Unix(1, 0))
}

// countIn counts bytes read from the socket, for liveness and Stats.
func (c *Conn) countIn(n int) {
	c.bytesIn.Add(uint64(n))
	c.m.stats.bytesIn.Add(uint64(n))
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
