package wsroom

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// ConnectionManager owns the live connections of one process and the rooms
// they are in. It is the tutorial's ConnectionManager:
// [ConnectionManager.Connect], [ConnectionManager.Disconnect],
// [ConnectionManager.SendPersonal] and [ConnectionManager.Broadcast], with
// rooms, bounded queues and shutdown.
//
// All methods are safe for concurrent use. None of them waits for a peer:
// sending only queues, and each connection's writer does the writing.
type ConnectionManager struct {
	cfg          config
	nodeID       string
	subprotocols []string

	// live counts connections not yet fully closed, plus running Start
	// read loops; Shutdown waits for it.
	live sync.WaitGroup
	// slots counts connections against WithMaxConnections, from the
	// check before the upgrade to the end of the connection.
	slots atomic.Int64

	mu     sync.RWMutex
	conns  map[*Conn]struct{}
	rooms  map[string]*room
	closed bool
	shut   atomic.Bool // closed, read without the lock

	// allMu keeps concurrent BroadcastAll calls in one order.
	allMu sync.Mutex
	// activeRooms counts rooms with local members.
	activeRooms atomic.Int64

	// The budget for queued bytes (budget.go).
	queuedBytes atomic.Int64
	doomed      atomic.Int64 // held by connections whose close dropped their queue
	reaping     atomic.Bool

	// publishLocks keep one node's publications to a room in the order
	// of its local deliveries (publish.go).
	publishLocks [64]sync.Mutex
	publishSeed  maphash.Seed
	pub          publisher

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
	m := &ConnectionManager{
		cfg:          cfg,
		nodeID:       nodeID,
		subprotocols: append(append([]string(nil), cfg.subprotocols...), tokenProtocolName),
		conns:        make(map[*Conn]struct{}),
		rooms:        make(map[string]*room),
		publishSeed:  maphash.MakeSeed(),
	}
	m.pub.idle = sync.NewCond(&m.pub.mu)
	return m, nil
}

// NodeID returns the ID this manager puts in broker envelopes.
func (m *ConnectionManager) NodeID() string { return m.nodeID }

func (m *ConnectionManager) isClosed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.closed
}

// released is the last step of a connection's life.
func (m *ConnectionManager) released(c *Conn) {
	m.releaseSlot()
	m.live.Done()
}

// Shutdown stops the manager: later Connect and Start calls fail with
// [ErrClosed] (HTTP 503, no upgrade), as do later broadcasts, and every
// connection leaves its rooms and is closed with 1001 (Going Away), reason
// "server shutdown", after the messages queued to it are written. Each
// close is bounded by the close timeout ([WithCloseTimeout]). Shutdown
// returns nil once every connection is closed, every Start read loop has
// returned and the broadcasts queued for the broker are published. If ctx
// ends first, it closes the remaining sockets at once, without a close
// frame, and returns ctx's error. Shutdown does not close the broker, which
// the caller owns: close it after Shutdown returns.
func (m *ConnectionManager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.shut.Store(true)
	conns := make([]*Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()

	for _, c := range conns {
		m.startClose(c, closeRequest{
			status: closePayload{code: StatusShutdown, reason: "server shutdown"},
			flush:  true,
			cause:  fmt.Errorf("%w: %w: %w", ErrClosed, ErrShutdown, closeErr(StatusShutdown, "server shutdown")),
		})
	}
	done := make(chan struct{})
	go func() {
		m.live.Wait()
		close(done)
	}()
	select {
	case <-done:
		if err := m.waitPublished(ctx); err != nil {
			return fmt.Errorf("wsroom: shutdown: broadcasts not yet published: %w", err)
		}
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			m.startClose(c, closeRequest{abort: true, cause: fmt.Errorf("%w: %w cut short", ErrClosed, ErrShutdown)})
		}
		return fmt.Errorf("wsroom: shutdown: %w", ctx.Err())
	}
}
