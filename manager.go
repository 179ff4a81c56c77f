package wsroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Errors returned by the manager. Match them with errors.Is.
var (
	// ErrClosed reports a manager that is shut down, or a connection that
	// is closing or closed.
	ErrClosed = errors.New("wsroom: closed")
	// ErrSlowConsumer reports a message not queued because the
	// connection's queue was full: the connection was evicted, or, under
	// [DropNewest], the message was dropped.
	ErrSlowConsumer = errors.New("wsroom: slow consumer")
	// ErrInvalidOption reports an option that [New] refused.
	ErrInvalidOption = errInvalidOption
	// ErrInvalidRoom reports a room name that is empty, longer than 255
	// bytes, or not valid UTF-8.
	ErrInvalidRoom = errors.New("wsroom: invalid room name")
)

// joinTimeout bounds the broker subscriptions of the rooms a connection
// joins in [ConnectionManager.Connect], which has no context of its own to
// use: the request's must not outlive the upgrade.
const joinTimeout = 10 * time.Second

// ConnectionManager owns the live connections of one process and the rooms
// they are in. It is the tutorial's ConnectionManager: [ConnectionManager.Connect],
// [ConnectionManager.Disconnect], [ConnectionManager.SendPersonal] and
// [ConnectionManager.Broadcast], with rooms, bounded queues and shutdown.
//
// All methods are safe for concurrent use. None of them waits for a peer:
// sending only queues, and each connection's writer does the writing.
type ConnectionManager struct {
	cfg          config
	nodeID       string
	subprotocols []string

	// live counts connections not yet fully closed, plus running Serve
	// read loops; Shutdown waits for it.
	live sync.WaitGroup

	mu     sync.RWMutex
	conns  map[*Conn]struct{}
	rooms  map[string]*room
	closed bool

	// publishLocks keep one node's publishes to a room in broadcast order.
	publishLocks [64]sync.Mutex
	publishSeed  maphash.Seed

	stats counters
}

// New returns a manager configured by opts. An invalid option is reported
// as an error matching [ErrInvalidOption].
func New(opts ...Option) (*ConnectionManager, error) {
	cfg := defaults()
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("nil option")
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	nodeID := cfg.nodeID
	if nodeID == "" {
		nodeID = randomID()
	}
	return &ConnectionManager{
		cfg:          cfg,
		nodeID:       nodeID,
		subprotocols: append(append([]string(nil), cfg.subprotocols...), tokenProtocolName),
		conns:        make(map[*Conn]struct{}),
		rooms:        make(map[string]*room),
		publishSeed:  maphash.MakeSeed(),
	}, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NodeID returns the ID this manager puts in broker envelopes.
func (m *ConnectionManager) NodeID() string { return m.nodeID }

// A ConnectOption configures one [ConnectionManager.Connect].
type ConnectOption func(*connectConfig)

type connectConfig struct {
	id    string
	rooms []string
}

// ConnID sets the connection's ID. Default: 16 random hex digits.
func ConnID(id string) ConnectOption {
	return func(c *connectConfig) { c.id = id }
}

// JoinRooms makes the connection a member of rooms before Connect returns,
// so that it misses no broadcast sent to them afterwards.
func JoinRooms(rooms ...string) ConnectOption {
	return func(c *connectConfig) { c.rooms = append(c.rooms, rooms...) }
}

// Connect authenticates r, upgrades it to a WebSocket, registers the
// connection, joins the rooms of [JoinRooms] and returns. The caller then
// reads with [Conn.Read] until it fails (the tutorial's loop), or uses
// [ConnectionManager.Serve] instead of Connect.
//
// Connect answers the request itself whenever it fails: HTTP 503 after
// [ConnectionManager.Shutdown] (the error matches [ErrClosed]), 403 when the
// [Authenticator] refuses (matches [ErrUnauthorized]), 403 for a foreign
// Origin, 426 for a request that is not a WebSocket handshake. In
// [CloseAfterAccept] mode a refused request is upgraded and closed with 1008.
//
// After Connect, r.Context() must not be used for the connection: net/http
// cancels it when the handler returns.
func (m *ConnectionManager) Connect(w http.ResponseWriter, r *http.Request, opts ...ConnectOption) (*Conn, error) {
	return m.connect(w, r, false, opts)
}

// Handler holds the callbacks of [ConnectionManager.Serve]. Each is
// optional. They run one at a time and in order (OnOpen, then OnMessage
// for each message, then OnClose), never under a lock of the manager's, so
// they may call any method of the manager.
type Handler struct {
	// OnOpen runs once, before the first message is read, on the
	// goroutine that called Serve.
	OnOpen func(c *Conn)
	// OnMessage runs for each message, in the order the peer sent them.
	OnMessage func(c *Conn, msg Message)
	// OnClose runs once, after the connection has left its rooms. err is
	// nil for a normal close (1000 or 1001 from either side) and the read
	// error otherwise.
	OnClose func(c *Conn, err error)
}

// Serve is [ConnectionManager.Connect] with the read loop run for the
// caller: it returns as soon as the connection is registered, and a
// goroutine of the library's reads it and calls h. An idle connection then
// costs one small goroutine instead of net/http's handler goroutine.
func (m *ConnectionManager) Serve(w http.ResponseWriter, r *http.Request, h Handler, opts ...ConnectOption) (*Conn, error) {
	c, err := m.connect(w, r, true, opts)
	if err != nil {
		return nil, err
	}
	// OnOpen runs here, on the request's goroutine, rather than on the
	// read goroutine: work such as a join broadcast to a large room would
	// grow the read goroutine's stack, which an idle connection then keeps.
	if h.OnOpen != nil {
		h.OnOpen(c)
	}
	go m.serveLoop(c, h)
	return c, nil
}

func (m *ConnectionManager) serveLoop(c *Conn, h Handler) {
	defer m.live.Done()
	for {
		msg, err := c.Read(context.Background())
		if err != nil {
			if h.OnClose != nil {
				if isNormalClose(err) {
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

func (m *ConnectionManager) connect(w http.ResponseWriter, r *http.Request, serve bool, opts []ConnectOption) (*Conn, error) {
	var cc connectConfig
	for _, opt := range opts {
		opt(&cc)
	}
	for _, name := range cc.rooms {
		if err := validRoom(name); err != nil {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return nil, err
		}
	}
	if m.isClosed() {
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return nil, ErrClosed
	}
	identity, authErr := m.identityFor(r)
	if authErr != nil && m.cfg.authFailure == RejectHandshake {
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return nil, authErr
	}

	uw := &upgradeWriter{ResponseWriter: w, readBufferSize: m.cfg.readBufferSize, writeTimeout: m.cfg.writeTimeout}
	ws, err := websocket.Accept(uw, r, &websocket.AcceptOptions{
		Subprotocols:   m.subprotocols,
		OriginPatterns: m.cfg.originPatterns,
	})
	if err != nil {
		return nil, fmt.Errorf("wsroom: upgrade: %w", err)
	}
	if authErr != nil {
		_ = ws.Close(StatusUnauthorized, "unauthorized")
		return nil, authErr
	}
	ws.SetReadLimit(m.cfg.readLimit)

	c := &Conn{
		m:        m,
		ws:       ws,
		netConn:  uw.netConn,
		out:      uw.out,
		id:       cc.id,
		identity: identity,
		done:     make(chan struct{}),
	}
	if c.id == "" {
		c.id = randomID()
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = ws.Close(StatusShutdown, "server shutdown")
		return nil, ErrClosed
	}
	m.conns[c] = struct{}{}
	m.live.Add(1)
	if serve {
		m.live.Add(1)
	}
	m.mu.Unlock()

	if len(cc.rooms) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
		defer cancel()
		for _, name := range cc.rooms {
			if err := m.join(ctx, c, name); err != nil {
				m.disconnect(c, websocket.StatusInternalError, "join failed", false)
				if serve {
					m.live.Done()
				}
				return nil, err
			}
		}
	}
	if m.cfg.pingInterval > 0 {
		c.mu.Lock()
		if !c.closing {
			c.ping = time.AfterFunc(m.cfg.pingInterval, c.pingOnce)
		}
		c.mu.Unlock()
	}
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

func (m *ConnectionManager) isClosed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.closed
}

// A DisconnectOption configures one [ConnectionManager.Disconnect].
type DisconnectOption func(*websocket.CloseError)

// Status sets the close code and reason Disconnect sends. A reason longer
// than the 123 bytes a close frame can carry is cut at a character boundary.
func Status(code StatusCode, reason string) DisconnectOption {
	const maxReason = 123
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return func(ce *websocket.CloseError) {
		ce.Code, ce.Reason = code, reason
	}
}

// Disconnect removes c from the manager and from every room, then closes it
// once the messages already queued to it are written: with 1000 (Normal
// Closure) by default, or the code of a [Status] option. It returns at once;
// the close handshake runs on the connection's writer and is bounded by the
// write timeout. Disconnect is idempotent and safe from any goroutine,
// including while another goroutine is in [Conn.Read], which then fails.
func (m *ConnectionManager) Disconnect(c *Conn, opts ...DisconnectOption) {
	ce := websocket.CloseError{Code: websocket.StatusNormalClosure}
	for _, opt := range opts {
		opt(&ce)
	}
	m.disconnect(c, ce.Code, ce.Reason, true)
}

// disconnect starts c's close and detaches it from the manager and its
// rooms, once.
func (m *ConnectionManager) disconnect(c *Conn, code StatusCode, reason string, flush bool) {
	c.mu.Lock()
	c.startCloseLocked(code, reason, flush)
	if c.detached {
		c.mu.Unlock()
		return
	}
	c.detached = true
	rooms := c.rooms
	c.rooms = nil
	c.mu.Unlock()

	for _, r := range rooms {
		m.removeMember(r, c)
	}
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// evict disconnects a connection whose queue overflowed under [Evict].
func (m *ConnectionManager) evict(c *Conn) {
	m.stats.evicted.Add(1)
	m.cfg.logger.Info("wsroom: evicted slow consumer", "conn", c.id)
	m.disconnect(c, StatusSlowConsumer, "slow consumer", false)
}

// readFailed ends a connection whose read failed and returns the error for
// the reader.
func (m *ConnectionManager) readFailed(c *Conn, err error) error {
	c.mu.Lock()
	ours := c.closing
	c.mu.Unlock()
	if ours || isNormalClose(err) {
		m.cfg.logger.Debug("wsroom: disconnected", "conn", c.id, "status", websocket.CloseStatus(err))
	} else {
		m.cfg.logger.Info("wsroom: read failed", "conn", c.id, "err", err)
	}
	m.disconnect(c, websocket.StatusInternalError, "read failed", false)
	if ours {
		return fmt.Errorf("wsroom: read: %w: %w", ErrClosed, err)
	}
	return fmt.Errorf("wsroom: read: %w", err)
}

// writeFailed ends a connection whose peer stopped accepting data or went
// away.
func (m *ConnectionManager) writeFailed(c *Conn, err error) {
	c.mu.Lock()
	ours := c.closing
	c.mu.Unlock()
	if !ours {
		m.stats.writeFailures.Add(1)
		m.cfg.logger.Info("wsroom: write failed", "conn", c.id, "err", err)
	}
	c.abort()
	m.disconnect(c, websocket.StatusInternalError, "write failed", false)
}

func isNormalClose(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return true
	}
	return errors.Is(err, io.EOF)
}

// SendPersonal queues msg to c alone. It returns once msg is queued, never
// waiting for the peer. It fails with [ErrClosed] if c is closing, and with
// [ErrSlowConsumer] if c's queue is full (c is then evicted, or under
// [DropNewest] msg is dropped). ctx is checked before queuing.
func (m *ConnectionManager) SendPersonal(ctx context.Context, c *Conn, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch c.enqueue(msg) {
	case queued, queuedDroppedOldest:
		m.stats.queued.Add(1)
		return nil
	case droppedNewest:
		m.stats.droppedNewest.Add(1)
		return fmt.Errorf("%w: queue full, message dropped", ErrSlowConsumer)
	case evictedNow:
		m.evict(c)
		return fmt.Errorf("%w: queue full, connection evicted", ErrSlowConsumer)
	default:
		return ErrClosed
	}
}

// A BroadcastOption configures one broadcast.
type BroadcastOption func(*broadcastConfig)

type broadcastConfig struct {
	except []*Conn
}

// applyBroadcastOptions builds a broadcast's configuration. The options see
// a pointer, which moves the configuration to the heap, so a broadcast
// without options skips them and costs no allocation.
func applyBroadcastOptions(opts []BroadcastOption) broadcastConfig {
	if len(opts) == 0 {
		return broadcastConfig{}
	}
	bc := new(broadcastConfig)
	for _, opt := range opts {
		opt(bc)
	}
	return *bc
}

// Except leaves conns out of a broadcast, on every node: typically the
// sender.
func Except(conns ...*Conn) BroadcastOption {
	return func(b *broadcastConfig) { b.except = append(b.except, conns...) }
}

// Broadcast queues msg to every member of the named room, in this process
// and, with a [Broker], in every other. It returns once the local queues
// have msg and the broker has taken it, never waiting for a peer. Every
// member sees a room's broadcasts in the same order. A member whose queue is
// full is handled by the [SlowConsumerPolicy] and does not affect the
// others.
//
// With a broker, an error means the broker did not take msg: local members
// still got it. ctx is checked first and bounds the publish.
func (m *ConnectionManager) Broadcast(ctx context.Context, room string, msg Message, opts ...BroadcastOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validRoom(room); err != nil {
		return err
	}
	bc := applyBroadcastOptions(opts)
	if m.cfg.broker == nil {
		m.deliver(m.lookupRoom(room), msg, bc.except)
		return nil
	}
	lock := &m.publishLocks[maphash.String(m.publishSeed, room)%uint64(len(m.publishLocks))]
	lock.Lock()
	defer lock.Unlock()
	m.deliver(m.lookupRoom(room), msg, bc.except)
	env := envelope{Node: m.nodeID, Room: room, Message: msg}
	if len(bc.except) > 0 {
		env.Sender = bc.except[0].id
	}
	if err := m.cfg.broker.Publish(ctx, room, appendEnvelope(nil, env)); err != nil {
		m.stats.brokerPublishErrors.Add(1)
		return fmt.Errorf("wsroom: publish to room %q: %w", room, err)
	}
	m.stats.brokerPublished.Add(1)
	return nil
}

// BroadcastAll queues msg to every connection of this process, whatever its
// rooms: the tutorial's broadcast to everyone. It does not cross to other
// nodes; to reach everyone everywhere, put everyone in one room.
func (m *ConnectionManager) BroadcastAll(ctx context.Context, msg Message, opts ...BroadcastOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bc := applyBroadcastOptions(opts)
	var victims []*Conn
	var n, dropped uint64
	// The write lock keeps concurrent BroadcastAll calls in one order.
	m.mu.Lock()
	for c := range m.conns {
		n, dropped, victims = offer(c, msg, bc.except, n, dropped, victims)
	}
	m.mu.Unlock()
	m.settle(n, dropped, victims)
	return nil
}

// deliver queues msg to r's local members but except. r may be nil.
func (m *ConnectionManager) deliver(r *room, msg Message, except []*Conn) {
	if r == nil {
		return
	}
	var victims []*Conn
	var n, dropped uint64
	r.mu.Lock()
	for _, c := range r.members {
		n, dropped, victims = offer(c, msg, except, n, dropped, victims)
	}
	r.mu.Unlock()
	m.settle(n, dropped, victims)
}

// offer queues msg to c unless c is in except, and tallies the outcome.
func offer(c *Conn, msg Message, except []*Conn, n, dropped uint64, victims []*Conn) (uint64, uint64, []*Conn) {
	for _, e := range except {
		if e == c {
			return n, dropped, victims
		}
	}
	switch c.enqueue(msg) {
	case queued, queuedDroppedOldest:
		n++
	case droppedNewest:
		dropped++
	case evictedNow:
		victims = append(victims, c)
	}
	return n, dropped, victims
}

// settle records a delivery's tallies and evicts, outside every lock.
func (m *ConnectionManager) settle(n, dropped uint64, victims []*Conn) {
	m.stats.queued.Add(n)
	if dropped > 0 {
		m.stats.droppedNewest.Add(dropped)
	}
	for _, c := range victims {
		m.evict(c)
	}
}

// receive handles a payload the broker delivered on r's subscription. It
// delivers to r itself, not to the room of that name: while a freed room's
// subscription is closing, a new room of the same name has its own.
func (m *ConnectionManager) receive(r *room, payload []byte) {
	env, err := parseEnvelope(payload)
	if err == nil && env.Room != r.name {
		err = fmt.Errorf("%w: room %q on the subscription of %q", errBadEnvelope, env.Room, r.name)
	}
	if err != nil {
		m.stats.brokerMalformed.Add(1)
		m.cfg.logger.Warn("wsroom: dropped broker message", "room", r.name, "err", err)
		return
	}
	if env.Node == m.nodeID {
		return // delivered locally when it was broadcast
	}
	m.stats.brokerReceived.Add(1)
	m.deliver(r, env.Message, nil)
}

// Shutdown stops the manager: later Connect calls fail with [ErrClosed]
// (HTTP 503, no upgrade), and every connection leaves its rooms and is
// closed with 1001 (Going Away) after the messages queued to it are written.
// Shutdown returns nil once every connection is closed and every Serve loop
// has returned. If ctx ends first, it closes the remaining sockets at once
// and returns ctx's error. Shutdown does not close the broker, which the
// caller owns.
func (m *ConnectionManager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	conns := make([]*Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()

	for _, c := range conns {
		m.disconnect(c, StatusShutdown, "server shutdown", true)
	}
	done := make(chan struct{})
	go func() {
		m.live.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.abort()
		}
		return fmt.Errorf("wsroom: shutdown: %w", ctx.Err())
	}
}

type counters struct {
	queued, sent                                                          atomic.Uint64
	droppedNewest, droppedOldest, evicted                                 atomic.Uint64
	authFailures, pingTimeouts, writeFailures                             atomic.Uint64
	brokerPublished, brokerPublishErrors, brokerReceived, brokerMalformed atomic.Uint64
}

// Stats is a snapshot of a manager's counters. Counts are totals since New,
// except Connections and Rooms.
type Stats struct {
	Connections int // registered connections
	Rooms       int // rooms with local members

	Queued        uint64 // messages queued to connections (one per recipient)
	Sent          uint64 // messages written to sockets
	DroppedNewest uint64 // messages dropped under DropNewest
	DroppedOldest uint64 // messages dropped under DropOldest
	Evicted       uint64 // connections evicted under Evict
	AuthFailures  uint64 // requests the Authenticator refused
	PingTimeouts  uint64 // connections closed for not answering a ping
	WriteFailures uint64 // connections closed because a write failed or timed out

	BrokerPublished     uint64 // broadcasts the broker took
	BrokerPublishErrors uint64 // broadcasts the broker refused
	BrokerReceived      uint64 // broadcasts from other nodes delivered here
	BrokerMalformed     uint64 // broker payloads dropped because they did not parse
}

// Stats returns the manager's counters.
func (m *ConnectionManager) Stats() Stats {
	m.mu.RLock()
	conns, rooms := len(m.conns), len(m.rooms)
	m.mu.RUnlock()
	s := &m.stats
	return Stats{
		Connections:         conns,
		Rooms:               rooms,
		Queued:              s.queued.Load(),
		Sent:                s.sent.Load(),
		DroppedNewest:       s.droppedNewest.Load(),
		DroppedOldest:       s.droppedOldest.Load(),
		Evicted:             s.evicted.Load(),
		AuthFailures:        s.authFailures.Load(),
		PingTimeouts:        s.pingTimeouts.Load(),
		WriteFailures:       s.writeFailures.Load(),
		BrokerPublished:     s.brokerPublished.Load(),
		BrokerPublishErrors: s.brokerPublishErrors.Load(),
		BrokerReceived:      s.brokerReceived.Load(),
		BrokerMalformed:     s.brokerMalformed.Load(),
	}
}
