package wsroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// StatusCode is a WebSocket close code, as defined by coder/websocket.
type StatusCode = websocket.StatusCode

// Close codes wsroom sends on its own. See the table in the package doc.
const (
	// StatusSlowConsumer closes a connection evicted because its queue was
	// full under the [Evict] policy (1013, Try Again Later).
	StatusSlowConsumer = websocket.StatusTryAgainLater
	// StatusShutdown closes every connection in [ConnectionManager.Shutdown]
	// (1001, Going Away).
	StatusShutdown = websocket.StatusGoingAway
	// StatusUnauthorized closes a connection refused by the [Authenticator]
	// in [CloseAfterAccept] mode (1008, Policy Violation).
	StatusUnauthorized = websocket.StatusPolicyViolation
)

// Conn is one WebSocket connection registered with a [ConnectionManager].
//
// All its methods are safe for concurrent use, except that only one
// goroutine at a time may call [Conn.Read]. Messages reach a Conn through
// the manager ([ConnectionManager.SendPersonal], [ConnectionManager.Broadcast]);
// they are queued and written by the connection's own writer, never by the
// caller.
type Conn struct {
	m        *ConnectionManager
	ws       *websocket.Conn
	netConn  net.Conn
	out      *gatherWriter
	id       string
	identity Identity
	done     chan struct{} // closed when the connection is fully closed
	ping     *time.Timer   // nil when pings are off

	mu          sync.Mutex
	queue       queue
	writing     bool // a writer goroutine is draining queue
	closing     bool // closing started: nothing more is queued or joined
	detached    bool // removed from the manager and its rooms
	closeStatus websocket.CloseError
	rooms       []*room
	values      map[any]any
	// writeLoopFunc is c.writeLoop, bound once.
	writeLoopFunc func()
}

// ID returns the connection's ID: the one given with [ConnID], or else a
// random one. IDs need not be unique (the tutorial's chat allows two clients
// named alike); the *Conn is the connection's identity.
func (c *Conn) ID() string { return c.id }

// Identity returns who the [Authenticator] said the connection belongs to,
// or the zero Identity when the manager has none.
func (c *Conn) Identity() Identity { return c.identity }

// Subprotocol returns the negotiated subprotocol, or "" for none.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Rooms returns the names of the rooms the connection is in, sorted.
func (c *Conn) Rooms() []string {
	c.mu.Lock()
	names := make([]string, len(c.rooms))
	for i, r := range c.rooms {
		names[i] = r.name
	}
	c.mu.Unlock()
	slices.Sort(names)
	return names
}

// Done returns a channel that is closed once the connection is closed and
// its writer has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

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
// Cancelling ctx closes the connection (a coder/websocket rule), so pass a
// context that lives as long as the connection, never the request's. Any
// error ends the connection: it is disconnected and leaves its rooms, and
// every later Read fails too. A peer's close frame gives an error from which
// websocket.CloseStatus returns its code. A message over the read limit
// closes the connection with 1009.
func (c *Conn) Read(ctx context.Context) (Message, error) {
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		return Message{}, c.m.readFailed(c, err)
	}
	return Message{binary: typ == websocket.MessageBinary, data: data}, nil
}

// Key is a typed key for values stored on a connection, which replaces a
// map of interface values that callers would have to lock and assert:
//
//	var nick = wsroom.NewKey[string]("nick")
//	nick.Set(c, "ann")
//	name, ok := nick.Get(c)
//
// Keys are compared by identity: two NewKey calls make two keys.
type Key[T any] struct{ name string }

// NewKey returns a new key. The name appears only in String.
func NewKey[T any](name string) *Key[T] { return &Key[T]{name: name} }

// String returns the key's name.
func (k *Key[T]) String() string { return k.name }

// Set stores v on c under k.
func (k *Key[T]) Set(c *Conn, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.values == nil {
		c.values = make(map[any]any)
	}
	c.values[k] = v
}

// Get returns the value stored on c under k, and whether there is one.
func (k *Key[T]) Get(c *Conn) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[k].(T)
	return v, ok
}

// Delete removes the value stored on c under k.
func (k *Key[T]) Delete(c *Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.values, k)
}

// enqueueResult says what happened to a message offered to a queue.
type enqueueResult int

const (
	queued enqueueResult = iota
	queuedDroppedOldest
	droppedNewest
	evictedNow // the queue was full and the connection must be evicted
	closed
)

// enqueue offers m to the connection's queue and starts its writer if none
// runs. It never waits for the peer. The caller evicts on evictedNow,
// outside any room lock.
func (c *Conn) enqueue(m Message) enqueueResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return closed
	}
	cfg := &c.m.cfg
	result := queued
	if c.queue.n > 0 && (c.queue.n >= cfg.queueMessages || c.queue.bytes+len(m.data) > cfg.queueBytes) {
		switch cfg.policy {
		case DropNewest:
			return droppedNewest
		case DropOldest:
			for c.queue.n > 0 && (c.queue.n >= cfg.queueMessages || c.queue.bytes+len(m.data) > cfg.queueBytes) {
				c.queue.pop()
				c.m.stats.droppedOldest.Add(1)
			}
			result = queuedDroppedOldest
		default:
			c.startCloseLocked(StatusSlowConsumer, "slow consumer", false)
			return evictedNow
		}
	}
	c.queue.push(m)
	c.startWriterLocked()
	return result
}

func (c *Conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		if c.writeLoopFunc == nil {
			c.writeLoopFunc = c.writeLoop
		}
		// A go statement on a method value allocates a closure each
		// time; on the bound func it does not, so a broadcast costs no
		// allocation per recipient.
		go c.writeLoopFunc()
	}
}

// startCloseLocked marks the connection closing with the given status. With
// flush, what is queued is written first; without, it is dropped.
func (c *Conn) startCloseLocked(code StatusCode, reason string, flush bool) {
	if c.closing {
		return
	}
	c.closing = true
	c.closeStatus = websocket.CloseError{Code: code, Reason: reason}
	if !flush {
		c.queue.reset()
	}
	if c.ping != nil {
		c.ping.Stop()
	}
	c.startWriterLocked()
}

// writeLoop is the connection's only writer. It runs while the queue is not
// empty and, once the connection is closing and the queue is empty, performs
// the close handshake.
func (c *Conn) writeLoop() {
	for {
		err := c.drain()
		c.mu.Lock()
		if errors.Is(err, errCloseSent) {
			// coder answered the peer's close or a protocol error with a
			// close frame of its own: no data may follow it.
			c.queue.reset()
			c.mu.Unlock()
			c.m.disconnect(c, websocket.StatusNormalClosure, "", false)
			c.finishClose()
			return
		}
		if err != nil {
			c.queue.reset()
			c.mu.Unlock()
			c.m.writeFailed(c, err)
			c.finishClose()
			return
		}
		switch {
		case c.queue.n > 0:
			c.mu.Unlock()
		case c.closing:
			c.mu.Unlock()
			c.finishClose()
			return
		default:
			c.writing = false
			c.mu.Unlock()
			return
		}
	}
}

// drain writes queued messages until the queue is empty, gathering them
// into as few socket writes as it can.
func (c *Conn) drain() error {
	var batch [16]Message
	var merged *[]byte // coalescing buffer, from gatherPool
	sent := 0
	defer func() {
		c.m.stats.sent.Add(uint64(sent))
		if merged != nil {
			gatherPool.Put(merged)
		}
	}()
	c.out.begin()
	for {
		c.mu.Lock()
		n := 0
		for n < len(batch) && c.queue.n > 0 {
			batch[n] = c.queue.pop()
			n++
		}
		c.mu.Unlock()
		if n == 0 {
			return c.out.end()
		}
		for i := 0; i < n; {
			m, next := batch[i], i+1
			if sep := c.m.cfg.coalesce; sep != nil && next < n {
				if merged == nil {
					merged = gatherPool.Get().(*[]byte)
				}
				m, next = coalesce(batch[:n], i, sep, (*merged)[:0])
			}
			if err := c.out.writeMessage(m.binary, m.data); err != nil {
				clear(batch[:n])
				_ = c.out.end()
				return err
			}
			i = next
		}
		clear(batch[:n])
		sent += n
	}
}

// coalesce joins batch[i] and the messages after it of the same type that
// fit in gatherLimit into buf, separated by sep, and returns them as one
// message with the index of the first message it left out.
func coalesce(batch []Message, i int, sep, buf []byte) (Message, int) {
	first := batch[i]
	if len(first.data) >= gatherLimit {
		return first, i + 1
	}
	buf = append(buf, first.data...)
	j := i + 1
	for ; j < len(batch); j++ {
		next := batch[j]
		if next.binary != first.binary || len(buf)+len(sep)+len(next.data) > gatherLimit {
			break
		}
		buf = append(append(buf, sep...), next.data...)
	}
	return Message{binary: first.binary, data: buf}, j
}

// finishClose performs the close handshake and releases the connection. It
// runs once, at the end of the writer.
func (c *Conn) finishClose() {
	c.mu.Lock()
	status := c.closeStatus
	c.mu.Unlock()
	err := c.ws.Close(status.Code, status.Reason)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.m.cfg.logger.Debug("wsroom: close handshake", "conn", c.id, "err", err)
	}
	_ = c.netConn.Close()
	close(c.done)
	c.m.live.Done()
}

// abort closes the socket at once, without a handshake: for a peer that is
// gone or that must not hold up a shutdown.
func (c *Conn) abort() { _ = c.netConn.Close() }

// pingOnce runs on the connection's ping timer: a peer that does not answer
// in time is disconnected.
func (c *Conn) pingOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.pingTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if err == nil {
		c.ping.Reset(c.m.cfg.pingInterval)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.m.stats.pingTimeouts.Add(1)
	c.m.cfg.logger.Info("wsroom: peer did not answer ping", "conn", c.id, "err", err)
	c.abort()
	c.m.disconnect(c, websocket.StatusGoingAway, "ping timeout", false)
}

func (c *Conn) String() string { return fmt.Sprintf("wsroom.Conn(%s)", c.id) }
