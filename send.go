package wsroom

import (
	"context"
	"fmt"
	"sync"
)

// Sending only queues: SendPersonal, Broadcast and BroadcastAll put the
// message in each recipient's queue under that connection's lock and
// return; each connection's writer does the writing (write.go). A full
// queue is the slow-consumer policy's business, settled here.

// enqueueResult says what happened to a message offered to a queue.
type enqueueResult int

const (
	queued enqueueResult = iota
	droppedNewest
	evictNow // the queue was full under Evict: the caller evicts, outside its locks
	notQueued
)

// enqueue offers msg, of size bytes and charged to the budget by the
// caller, to c's queue and starts c's writer if none runs. It never waits
// for the peer. Unless it returns queued, the caller uncharges msg.
func (c *Conn) enqueue(msg Message, size int) enqueueResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return notQueued
	}
	if c.capped {
		c.m.stats.droppedNewest.Add(1)
		return droppedNewest
	}
	cfg := &c.m.cfg
	full := func() bool {
		return c.queue.n > 0 && (c.queue.n >= cfg.queueMessages || c.queue.bytes+size > cfg.queueBytes)
	}
	if full() {
		switch cfg.policy {
		case DropNewest:
			c.m.stats.droppedNewest.Add(1)
			return droppedNewest
		case DropOldest:
			for full() {
				c.dropOldestLocked()
				c.m.stats.droppedOldest.Add(1)
			}
		default:
			return evictNow
		}
	}
	c.pushLocked(msg, size)
	c.startWriterLocked()
	return queued
}

// SendPersonal queues msg to c alone. It returns once msg is queued, never
// waiting for the peer. It fails with [ErrClosed] if c is closing, with
// [ErrInvalidUTF8] for a text message that is not UTF-8, and with
// [ErrSlowConsumer] if c's queue is full (c is then evicted, or under
// [DropNewest] msg is dropped). ctx is checked before queuing.
func (m *ConnectionManager) SendPersonal(ctx context.Context, c *Conn, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.checkSendable(msg); err != nil {
		return fmt.Errorf("wsroom: send to %v: %w", c, err)
	}
	m.charge(msg, 1)
	result := c.enqueue(msg, msg.Len())
	if result != queued {
		m.uncharge(msg, 1)
	}
	switch result {
	case queued:
		m.stats.queued.Add(1)
		m.enforceBudget()
		return nil
	case droppedNewest:
		return fmt.Errorf("%w: queue full, message to %v dropped", ErrSlowConsumer, c)
	case evictNow:
		m.evict(c)
		return fmt.Errorf("%w: queue full, %v evicted", ErrSlowConsumer, c)
	default:
		return fmt.Errorf("wsroom: send to %v: %w", c, ErrClosed)
	}
}

// Broadcast queues msg to every member of the named room, except the
// connections in except (typically the sender), in this process and, with
// a [Broker], in every other. It returns once the local queues have msg and
// it is queued for the broker, never waiting for a peer or for the broker.
// Every local member sees a room's broadcasts in the same order, and the
// broker gets them in that order too. A member whose queue is full is
// handled by the [SlowConsumerPolicy] and does not affect the others.
//
// It fails with [ErrInvalidRoom] for an invalid name, [ErrInvalidUTF8] for
// a text message that is not UTF-8 and [ErrClosed] after Shutdown, sending
// nothing. With a broker, an error matching [ErrBrokerUnavailable] means
// msg may not reach the other processes (the publish queue is full, or the
// broker's last publish failed); the local members got it all the same.
// ctx is checked first.
func (m *ConnectionManager) Broadcast(ctx context.Context, room string, msg Message, except ...*Conn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validRoom(room); err != nil {
		return err
	}
	if err := m.checkSendable(msg); err != nil {
		return fmt.Errorf("wsroom: broadcast to room %q: %w", room, err)
	}
	if m.shut.Load() {
		return fmt.Errorf("wsroom: broadcast to room %q: %w", room, ErrClosed)
	}
	if m.cfg.broker == nil {
		m.deliver(m.lookupRoom(room), msg, except)
		return nil
	}
	return m.publish(room, msg, except)
}

// BroadcastAll queues msg to every connection of this process, whatever its
// rooms, except the connections in except: the tutorial's broadcast to
// everyone. It does not cross to other processes; to reach everyone
// everywhere, put everyone in one room.
//
// Concurrent BroadcastAll calls reach every connection in one order. A
// room broadcast made at the same time may come before the BroadcastAll on
// one connection and after it on another. BroadcastAll holds no lock of
// the manager's while it queues: connections, room broadcasts and Stats go
// on meanwhile.
func (m *ConnectionManager) BroadcastAll(ctx context.Context, msg Message, except ...*Conn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.checkSendable(msg); err != nil {
		return fmt.Errorf("wsroom: broadcast to all: %w", err)
	}
	everyone := connSlices.Get().(*[]*Conn)
	m.mu.RLock()
	for c := range m.conns {
		*everyone = append(*everyone, c)
	}
	m.mu.RUnlock()

	t := tally{msg: msg, size: msg.Len()}
	m.allMu.Lock()
	m.charge(msg, len(*everyone))
	for _, c := range *everyone {
		t.offer(c, except)
	}
	m.allMu.Unlock()
	m.uncharge(msg, len(*everyone)-int(t.queued))
	clear(*everyone)
	*everyone = (*everyone)[:0]
	connSlices.Put(everyone)
	m.settle(t)
	return nil
}

var connSlices = sync.Pool{New: func() any { return new([]*Conn) }}

func (m *ConnectionManager) checkSendable(msg Message) error {
	if err := msg.sendable(); err != nil {
		m.stats.invalidUTF8.Add(1)
		return err
	}
	return nil
}

// deliver queues msg to r's local members but except. r may be nil. The
// room's lock is held while queuing, so every member sees the room's
// broadcasts in one order.
func (m *ConnectionManager) deliver(r *room, msg Message, except []*Conn) {
	if r == nil {
		return
	}
	t := tally{msg: msg, size: msg.Len()}
	r.mu.Lock()
	// Charged for every member up front, so that a writer that writes
	// the message before the loop ends cannot take its count to zero.
	charged := len(r.members)
	m.charge(msg, charged)
	for _, c := range r.members {
		t.offer(c, except)
	}
	r.mu.Unlock()
	m.uncharge(msg, charged-int(t.queued))
	m.settle(t)
}

// tally is a delivery of msg in progress, and what it did, to be settled
// outside every lock.
type tally struct {
	msg     Message
	size    int
	queued  uint64
	victims []*Conn
}

// offer queues the message to c unless c is in except.
func (t *tally) offer(c *Conn, except []*Conn) {
	for _, e := range except {
		if e == c {
			return
		}
	}
	switch c.enqueue(t.msg, t.size) {
	case queued:
		t.queued++
	case evictNow:
		t.victims = append(t.victims, c)
	}
}

// settle records a delivery's count, evicts and enforces the budget,
// outside every lock.
func (m *ConnectionManager) settle(t tally) {
	m.stats.queued.Add(t.queued)
	for _, c := range t.victims {
		m.evict(c)
	}
	m.enforceBudget()
}

// evict disconnects a slow consumer: its queue is dropped and it is closed
// with 1013 (Try Again Later), reason "slow consumer".
func (m *ConnectionManager) evict(c *Conn) {
	if c.isClosing() {
		return
	}
	m.stats.evicted.Add(1)
	m.cfg.logger.Info("wsroom: evicted slow consumer", "conn", c.id)
	m.startClose(c, closeRequest{
		status: closePayload{code: StatusSlowConsumer, reason: "slow consumer"},
		cause:  fmt.Errorf("%w: %w: %w", ErrClosed, ErrSlowConsumer, closeErr(StatusSlowConsumer, "slow consumer")),
	})
}
