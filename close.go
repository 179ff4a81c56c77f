package wsroom

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/coder/websocket"
)

// The life of a connection's end. A close starts once, from whichever comes
// first: Disconnect, an eviction, Shutdown, the peer's close frame, a
// protocol error, a dead peer or a lost socket. From that moment the
// connection has left its rooms, takes no more messages and delivers none
// to Read. Its writer then writes what it must (the queue too, for a
// graceful close), the close frame, and ends the connection:
//
//   - after the peer's close frame, closing the TCP connection at once, as
//     RFC 6455 asks of a server;
//   - after a protocol error, at once too, lingering only to read what the
//     peer still sends (at most a second), so that its close frame is not
//     lost to a reset;
//   - otherwise, once the peer has answered with its close frame.
//
// Every close is bounded by the close timeout: whatever is left then, the
// socket is closed. A dead peer gets no close frame at all.

// StatusCode is a WebSocket close code, as defined by coder/websocket,
// whose constants (websocket.StatusNormalClosure...) name the codes of
// RFC 6455.
type StatusCode = websocket.StatusCode

// Close codes wsroom sends on its own. See the table in the package doc.
const (
	// StatusSlowConsumer closes a connection evicted as a slow consumer
	// (1013, Try Again Later), reason "slow consumer".
	StatusSlowConsumer = websocket.StatusTryAgainLater
	// StatusShutdown closes every connection in [ConnectionManager.Shutdown]
	// (1001, Going Away), reason "server shutdown".
	StatusShutdown = websocket.StatusGoingAway
	// StatusUnauthorized closes a connection refused by the [Authenticator]
	// in [CloseAfterAccept] mode (1008, Policy Violation), reason
	// "unauthorized".
	StatusUnauthorized = websocket.StatusPolicyViolation
)

// lingerTimeout bounds how long a connection failed for a protocol error
// reads what its peer still sends before closing.
const lingerTimeout = time.Second

// closeRequest is how a close starts.
type closeRequest struct {
	status closePayload // what our close frame carries
	flush  bool         // write what is queued before the close frame
	fail   bool         // a protocol failure: do not wait for the peer's close frame
	abort  bool         // a dead or lost peer: close the socket, send nothing
	cause  error        // what Read and OnClose report
}

// closeState is a connection's close, guarded by its mu.
type closeState struct {
	closeRequest
	sent     bool          // our close frame is written
	received bool          // the peer's close frame arrived
	readDone chan struct{} // closed once reading has ended
	detached chan struct{} // closed once the connection has left its rooms and the manager
	timer    *time.Timer   // the close timeout
	aborted  bool          // the socket is closed
	doomed   int64         // bytes held against the budget when a close dropped the queue
	peer     StatusCode    // the code of the peer's close frame, once received
}

// Disconnect closes c with code and reason: c leaves every room at once and
// takes no more messages; the messages already queued to it are written,
// then the close frame, and the peer's close frame is awaited. The whole
// close is bounded by the close timeout ([WithCloseTimeout], default 5s):
// a peer still reading slowly then, or not answering, has its socket closed.
//
// code must be one a close frame may carry: 1000-1003, 1007-1014 or
// 3000-4999 (use 1000, Normal Closure, for a plain disconnect), and reason
// at most 123 bytes of UTF-8; otherwise Disconnect does nothing and
// returns an error matching [ErrInvalidStatus]. Disconnect returns at
// once, is idempotent (a connection already closing keeps its first
// status) and is safe from any goroutine, including during [Conn.Read],
// which then fails with an error matching [ErrClosed].
func (m *ConnectionManager) Disconnect(c *Conn, code StatusCode, reason string) error {
	if !checkStatus(code, reason) {
		return fmt.Errorf("%w: code %d with a %d-byte reason", ErrInvalidStatus, code, len(reason))
	}
	m.startClose(c, closeRequest{
		status: closePayload{code: code, reason: reason},
		flush:  true,
		cause:  fmt.Errorf("%w: disconnected: %w", ErrClosed, closeErr(code, reason)),
	})
	return nil
}

// closeErr is the error that carries a close frame's status, so that
// websocket.CloseStatus finds it.
func closeErr(code StatusCode, reason string) error {
	return websocket.CloseError{Code: code, Reason: reason}
}

// startClose starts c's close, once; a later request only turns a graceful
// close into an abort. It never waits.
func (m *ConnectionManager) startClose(c *Conn, req closeRequest) {
	c.mu.Lock()
	if c.closing {
		abort := req.abort && !c.close.abort
		if abort {
			c.close.abort = true
		}
		c.mu.Unlock()
		if abort {
			c.abortSocket()
		}
		return
	}
	c.closing = true
	c.close.closeRequest = req
	if !req.flush {
		c.dropQueueLocked()
		// What the writer still holds goes when the connection ends:
		// the budget must not evict others for it meanwhile.
		c.close.doomed = c.held.Load()
		m.doomed.Add(c.close.doomed)
	}
	c.pingOut = nil
	c.live.stopPing()
	if !req.abort {
		c.close.timer = time.AfterFunc(m.cfg.closeTimeout, c.closeExpired)
	}
	c.startWriterLocked()
	rooms := c.rooms
	c.rooms = nil
	if m.eventsOn() {
		for _, r := range rooms {
			c.queueEventLocked(roomEvent{room: r.name, leave: true, reason: req.cause})
		}
	}
	c.mu.Unlock()

	if req.abort {
		c.abortSocket()
	}
	for _, r := range rooms {
		m.removeMember(r, c)
	}
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
	close(c.close.detached)
	if len(rooms) > 0 && m.eventsOn() {
		// A close may start under a lock of the manager's (an eviction
		// during a broadcast): the hooks run on a goroutine of their
		// own, which Shutdown waits for.
		m.live.Add(1)
		go func() {
			defer m.live.Done()
			c.runEvents()
		}()
	}
}

// peerClosed handles the peer's close frame: a close it started is
// answered with its own code, at once, dropping what was queued.
func (c *Conn) peerClosed(cp closePayload) error {
	c.mu.Lock()
	c.close.received = true
	c.close.peer = cp.code
	c.mu.Unlock()
	c.m.startClose(c, closeRequest{
		status: cp,
		cause:  fmt.Errorf("wsroom: peer closed the connection: %w", closeErr(cp.code, cp.reason)),
	})
	return errPeerClosed
}

// errPeerClosed ends a read at the peer's close frame.
var errPeerClosed = errors.New("wsroom: peer sent a close frame")

// readEnded handles the end of the read side and returns the error every
// Read reports from then on. It must be called with readMu held, once.
func (m *ConnectionManager) readEnded(c *Conn, err error) error {
	c.mu.Lock()
	cause, started := c.close.cause, c.closing
	c.mu.Unlock()
	if !started {
		// The peer went away without a close frame, or the socket failed.
		cause = fmt.Errorf("wsroom: connection lost: %w", err)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			m.cfg.logger.Debug("wsroom: peer went away without closing", "conn", c.id)
		} else {
			m.cfg.logger.Info("wsroom: read failed", "conn", c.id, "err", err)
		}
		m.startClose(c, closeRequest{abort: true, cause: cause})
	}
	close(c.close.readDone)
	// Whoever started the close may still be taking the connection out of
	// its rooms: Read fails, and OnClose runs, only once it has left them.
	<-c.close.detached
	return cause
}

// finish ends the connection once its writer has written the close frame,
// or could not: it waits for what the close still needs, then releases
// everything. It runs once, on the writer.
func (c *Conn) finish() {
	c.mu.Lock()
	st := c.close
	c.mu.Unlock()
	switch {
	case st.abort || st.aborted || !st.sent || st.received:
		// Nothing to wait for, or the handshake is complete: the
		// server closes the TCP connection first.
	case st.fail:
		c.linger()
	default:
		c.awaitPeerClose()
	}
	c.abortSocket()
	<-c.close.detached
	c.m.stats.closed(st.closeCode())

	c.mu.Lock()
	c.dropQueueLocked()
	c.m.doomed.Add(-c.close.doomed)
	if c.close.timer != nil {
		c.close.timer.Stop()
	}
	c.live.stop()
	c.mu.Unlock()
	close(c.done)
	c.m.released(c)
}

// closeCode is the code of the close handshake that ended the connection:
// the peer's if it sent its close frame, else ours if we sent one, else
// 1006 (Abnormal Closure), as a client sees a close without a handshake.
func (st closeState) closeCode() StatusCode {
	switch {
	case st.received:
		return st.peer
	case st.sent:
		return st.status.code
	}
	return websocket.StatusAbnormalClosure
}

// awaitPeerClose waits for the peer's close frame. If nobody is reading
// the connection, it reads it itself.
func (c *Conn) awaitPeerClose() {
	if c.readMu.TryLock() {
		_ = c.netConn.SetReadDeadline(time.Time{})
		for c.readErr == nil {
			if _, err := c.readMessage(); err != nil {
				c.endRead(err)
			}
		}
		c.readMu.Unlock()
		return
	}
	<-c.close.readDone
}

// linger reads and drops what a peer failed for a protocol error still
// sends, after a FIN of ours, until it closes or lingerTimeout passes:
// closing a socket with unread data would reset it, and the reset could
// destroy the close frame before the peer reads it.
func (c *Conn) linger() {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if cw, ok := rawConn(c.netConn).(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.netConn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, c.br)
}

// closeExpired runs when a close has taken the whole close timeout.
func (c *Conn) closeExpired() {
	c.m.stats.closeTimeouts.Add(1)
	c.m.cfg.logger.Info("wsroom: close timed out", "conn", c.id)
	c.abortSocket()
}

// abortSocket closes the socket without a handshake. The TCP connection
// under a TLS one is closed directly, so nothing waits to send a TLS alert
// to a peer that does not read.
func (c *Conn) abortSocket() {
	c.mu.Lock()
	done := c.close.aborted
	c.close.aborted = true
	c.mu.Unlock()
	if !done {
		_ = rawConn(c.netConn).Close()
	}
}

// rawConn returns the network connection under any wrapping one, such as
// a TLS connection.
func rawConn(nc net.Conn) net.Conn {
	for {
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nc
		}
		nc = u.NetConn()
	}
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}
