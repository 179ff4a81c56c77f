package wsroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Accepting a connection: the checks before the upgrade, the upgrade
// itself, and registration. coder/websocket's Accept validates the
// handshake and writes the 101 response; from then on wsroom speaks the
// protocol itself on the hijacked connection (read.go, write.go), so that
// it can check every frame, interleave control frames with long messages
// and judge a peer by its progress.

// ConnectOptions configures one connection. A nil *ConnectOptions is the
// zero value.
type ConnectOptions struct {
	// ID names the connection: at most 255 bytes of UTF-8. IDs need not
	// be unique. Default: 16 random hex digits.
	ID string
}

// Connect checks and upgrades r to a WebSocket and registers the
// connection. The caller then reads it with [Conn.Read] until that fails
// (the tutorial's loop), and joins it to rooms with
// [ConnectionManager.Join].
//
// Connect answers the request itself whenever it fails, before any
// upgrade, and returns an error saying why:
//
//   - 400 for an ID that is not up to 255 bytes of UTF-8 ([ErrInvalidID]);
//   - 503 after [ConnectionManager.Shutdown] ([ErrClosed]), or when
//     [WithMaxConnections] connections are open ([ErrRefused]);
//   - 403 for a Host not allowed by [WithAllowedHosts] or a foreign
//     Origin ([ErrRefused]), or when the [Authenticator] refuses
//     ([ErrUnauthorized]; in [CloseAfterAccept] mode the request is
//     upgraded and closed with 1008 instead);
//   - what coder/websocket answers a request that is not a valid
//     WebSocket handshake: 400, 405 or 426 ([ErrRefused]).
//
// After Connect, r.Context() must not be used for the connection: net/http
// cancels it when the handler returns.
func (m *ConnectionManager) Connect(w http.ResponseWriter, r *http.Request, opts *ConnectOptions) (*Conn, error) {
	return m.accept(w, r, opts, false)
}

// Hooks are the callbacks of [ConnectionManager.Start]. Each is optional.
// They run one at a time, in order (OnOpen, OnMessage for each message,
// OnClose), never under a lock of the manager's, so they may call any of
// its methods.
type Hooks struct {
	// OnOpen runs once, before the first message is read, on the
	// goroutine that called Start: join rooms here.
	OnOpen func(c *Conn)
	// OnMessage runs for each message, in the order the peer sent them,
	// on the connection's read goroutine. No message that arrives after
	// the connection started closing is passed on.
	OnMessage func(c *Conn, msg Message)
	// OnClose runs once, after the connection has left its rooms. err is
	// nil if the connection was closed with 1000 (Normal Closure) or 1001
	// (Going Away) by either side, or by a peer's close frame without a
	// code; otherwise it is the error [Conn.Read] returned.
	OnClose func(c *Conn, err error)
}

// Start is [ConnectionManager.Connect] with the read loop run by the
// manager: it runs OnOpen, starts a goroutine that reads the connection
// and calls h, and returns. Unlike net/http's Serve, it does not wait for
// the connection to end. An idle connection then costs one small goroutine
// instead of net/http's handler goroutine. Do not call [Conn.Read] on a
// connection from Start.
func (m *ConnectionManager) Start(w http.ResponseWriter, r *http.Request, opts *ConnectOptions, h Hooks) (*Conn, error) {
	c, err := m.accept(w, r, opts, true)
	if err != nil {
		return nil, err
	}
	// OnOpen runs here rather than on the read goroutine: work such as a
	// join broadcast to a large room would grow that goroutine's stack,
	// which an idle connection then keeps.
	if h.OnOpen != nil {
		h.OnOpen(c)
	}
	go m.serve(c, h)
	return c, nil
}

// serve is Start's read loop.
func (m *ConnectionManager) serve(c *Conn, h Hooks) {
	defer m.live.Done()
	for {
		msg, err := c.Read(context.Background())
		if err != nil {
			if h.OnClose != nil {
				if cleanClose(err) {
					err = nil
				}
				h.OnClose(c, err)
			}
			return
		}
		if h.OnMessage != nil {
			h.OnMessage(c, msg)
		}
	}
}

// cleanClose reports whether err ended a connection with 1000 or 1001, or
// a peer's close frame without a code.
func cleanClose(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, statusNoStatus:
		return true
	}
	return false
}

func (m *ConnectionManager) accept(w http.ResponseWriter, r *http.Request, opts *ConnectOptions, serve bool) (*Conn, error) {
	var id string
	if opts != nil {
		id = opts.ID
	}
	if len(id) > 255 || !utf8.ValidString(id) {
		m.stats.refusedHandshake.Add(1)
		http.Error(w, "invalid connection ID", http.StatusBadRequest)
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalidID, len(id))
	}
	if m.isClosed() {
		m.stats.refusedShutdown.Add(1)
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return nil, fmt.Errorf("wsroom: connect: %w", ErrClosed)
	}
	if !m.hostAllowed(r.Host) {
		m.stats.refusedHost.Add(1)
		http.Error(w, "host not allowed", http.StatusForbidden)
		return nil, fmt.Errorf("%w: host %q not allowed", ErrRefused, r.Host)
	}
	if err := m.checkOrigin(r); err != nil {
		m.stats.refusedOrigin.Add(1)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return nil, err
	}
	if !m.reserveSlot() {
		m.stats.refusedFull.Add(1)
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return nil, fmt.Errorf("%w: %d connections open, the most allowed", ErrRefused, m.cfg.maxConnections)
	}
	identity, authErr := m.identityFor(r)
	if authErr != nil && m.cfg.authFailure == RejectHandshake {
		m.releaseSlot()
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return nil, authErr
	}

	uw := &upgradeWriter{ResponseWriter: w}
	ws, err := websocket.Accept(uw, r, &websocket.AcceptOptions{
		Subprotocols:       m.subprotocols,
		InsecureSkipVerify: true, // the Origin was checked above
	})
	if err != nil {
		m.releaseSlot()
		m.stats.refusedHandshake.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	subprotocol := ws.Subprotocol()
	// coder's Conn sits on a detached connection and has no goroutine;
	// closing it releases it at once.
	_ = ws.CloseNow()
	// net/http's read and write timeouts stay set on a hijacked
	// connection: clear them.
	_ = uw.netConn.SetDeadline(time.Time{})

	if id == "" {
		id = randomID()
	}
	c := &Conn{
		m:           m,
		id:          id,
		identity:    identity,
		subprotocol: subprotocol,
		netConn:     uw.netConn,
		probe:       newProbe(uw.netConn),
		br:          uw.reader,
		done:        make(chan struct{}),
	}
	c.close.readDone = make(chan struct{})
	c.close.detached = make(chan struct{})

	m.mu.Lock()
	closed := m.closed
	m.conns[c] = struct{}{}
	m.live.Add(1)
	if serve {
		m.live.Add(1)
	}
	m.mu.Unlock()
	m.stats.accepted.Add(1)

	switch {
	case authErr != nil:
		m.startClose(c, closeRequest{status: closePayload{code: StatusUnauthorized, reason: "unauthorized"}, cause: authErr})
		if serve {
			m.live.Done()
		}
		return nil, authErr
	case closed:
		m.startClose(c, closeRequest{status: closePayload{code: StatusShutdown, reason: "server shutdown"}, cause: fmt.Errorf("%w: %w", ErrClosed, ErrShutdown)})
		if serve {
			m.live.Done()
		}
		return nil, fmt.Errorf("wsroom: connect: %w", ErrClosed)
	}
	c.mu.Lock()
	c.startPingLocked()
	c.mu.Unlock()
	m.cfg.logger.Debug("wsroom: connected", "conn", c.id, "remote", r.RemoteAddr)
	return c, nil
}

// identityFor returns the identity Middleware found, or authenticates r.
func (m *ConnectionManager) identityFor(r *http.Request) (Identity, error) {
	if err, ok := r.Context().Value(authFailedKey{}).(error); ok {
		return Identity{}, err
	}
	if id, ok := IdentityFrom(r.Context()); ok {
		return id, nil
	}
	if m.cfg.authenticator == nil {
		return Identity{}, nil
	}
	return m.authenticate(r)
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
