package wsroom

// Room events: the manager tells the application of every join and leave
// (WithRoomEvents). A connection's events are queued in the order they
// happen, under the locks that make them happen, and run afterwards,
// outside every lock, by whichever goroutine finds none running for that
// connection: so they run once each, in order, and a hook may call back
// into the manager, even for the same connection (the events that call
// causes run after the hook returns).

// RoomEvents are the hooks [WithRoomEvents] sets. Each is optional.
type RoomEvents struct {
	// OnJoin is called once c has joined room.
	OnJoin func(room string, c *Conn)
	// OnLeave is called once c has left room. reason is nil when
	// [ConnectionManager.Leave] took c out; otherwise c's connection ended
	// and reason is the error its Read returns. It matches [ErrClosed]
	// when this side closed: [ConnectionManager.Disconnect], or with
	// [ErrSlowConsumer] for an eviction, [ErrPingTimeout],
	// [ErrWriteTimeout], [ErrShutdown], or [ErrProtocol] for a peer that
	// broke the protocol. websocket.CloseStatus gives the close code when
	// there was a close frame: the peer's when the peer closed, in which
	// case reason does not match ErrClosed. A connection lost without a
	// close frame matches none of them.
	OnLeave func(room string, c *Conn, reason error)
}

// roomEvent is a join (leave false) or a leave waiting for its hook.
type roomEvent struct {
	room   string
	leave  bool
	reason error
}

// WithRoomEvents sets the hooks told of joins and leaves. For each
// connection they run one at a time, in the order of the joins and leaves,
// each exactly once, outside every lock of the manager's; they may run on
// another goroutine than the call that caused them (the one running the
// connection's earlier events), and after that call returns. The leaves of
// a connection that ends run on a goroutine of their own, which
// [ConnectionManager.Shutdown] waits for. Default: none.
func WithRoomEvents(e RoomEvents) Option {
	return func(c *config) error {
		c.events = e
		return nil
	}
}

// eventsOn reports whether any room event hook is set.
func (m *ConnectionManager) eventsOn() bool {
	return m.cfg.events.OnJoin != nil || m.cfg.events.OnLeave != nil
}

// queueEventLocked queues a room event of c's. c.mu must be held.
func (c *Conn) queueEventLocked(e roomEvent) {
	c.evMu.Lock()
	c.events = append(c.events, e)
	c.evMu.Unlock()
}

// runEvents runs c's queued events, unless another goroutine is running
// them: that one takes the new ones too. No lock may be held.
func (c *Conn) runEvents() {
	c.evMu.Lock()
	if c.evRunning {
		c.evMu.Unlock()
		return
	}
	c.evRunning = true
	for len(c.events) > 0 {
		e := c.events[0]
		c.events[0] = roomEvent{}
		c.events = c.events[1:]
		c.evMu.Unlock()
		c.runEvent(e)
		c.evMu.Lock()
	}
	c.events = nil
	c.evRunning = false
	c.evMu.Unlock()
}

func (c *Conn) runEvent(e roomEvent) {
	hooks := c.m.cfg.events
	switch {
	case e.leave && hooks.OnLeave != nil:
		hooks.OnLeave(e.room, c, e.reason)
	case !e.leave && hooks.OnJoin != nil:
		hooks.OnJoin(e.room, c)
	}
}
