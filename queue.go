package wsroom

import (
	"sync"
	"sync/atomic"
)

// firstRingSize is the size of a queue's first ring. Rings of this size
// come from a pool and go back to it when the queue empties, so that a
// burst costs no allocation and an idle connection holds no ring.
const firstRingSize = 8

var ringPool = sync.Pool{New: func() any { return new([firstRingSize]entry) }}

// queue is a connection's outbound FIFO: a ring of messages that grows on
// demand and is released when it empties, so an idle connection holds none.
type queue struct {
	ring  []entry
	head  int // index of the oldest message
	n     int // messages queued
	bytes int // payload bytes queued

	// depth mirrors n and bytes for Stats, which reads it without the
	// connection's lock: n in the high 24 bits (saturated), bytes in the
	// low 40 (saturated).
	depth atomic.Uint64
}

const (
	depthBytesBits = 40
	depthMaxBytes  = 1<<depthBytesBits - 1
	depthMaxN      = 1<<(64-depthBytesBits) - 1
)

// publish stores n and bytes in depth.
func (q *queue) publish() {
	q.depth.Store(uint64(min(q.n, depthMaxN))<<depthBytesBits | uint64(min(q.bytes, depthMaxBytes)))
}

// loadDepth returns the queue's length and bytes as last published, at
// any time, without the connection's lock.
func (q *queue) loadDepth() (n, bytes int) {
	d := q.depth.Load()
	return int(d >> depthBytesBits), int(d & depthMaxBytes)
}

// entry is a queued message with its length, kept beside it so that the
// queue's accounting never reads the shared payload.
type entry struct {
	msg  Message
	size int
}

func (q *queue) push(m Message, size int) {
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = entry{m, size}
	q.n++
	q.bytes += size
	q.publish()
}

func (q *queue) grow() {
	if q.ring == nil {
		q.ring = ringPool.Get().(*[firstRingSize]entry)[:]
		return
	}
	ring := make([]entry, 2*len(q.ring))
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// pop removes and returns the oldest message. It must not be called on an
// empty queue.
func (q *queue) pop() entry {
	e := q.ring[q.head]
	q.ring[q.head] = entry{}
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	q.bytes -= e.size
	if q.n == 0 {
		q.reset()
	} else {
		q.publish()
	}
	return e
}

// peekSize returns the size of the oldest message. It must not be called
// on an empty queue.
func (q *queue) peekSize() int { return q.ring[q.head].size }

// reset empties the queue and releases its ring: a first ring to the pool,
// a larger one to the garbage collector. The caller has released the
// messages.
func (q *queue) reset() {
	if len(q.ring) == firstRingSize {
		clear(q.ring)
		ringPool.Put((*[firstRingSize]entry)(q.ring))
	}
	q.ring, q.head, q.n, q.bytes = nil, 0, 0, 0
	q.publish()
}

// pushLocked queues m, of size bytes, whose budget charge the caller has
// made. c.mu must be held.
func (c *Conn) pushLocked(m Message, size int) {
	c.queue.push(m, size)
	c.held.Add(int64(size))
}

// takeLocked takes the oldest message for the writer, which uncharges it
// with written once it is copied out. c.mu must be held.
func (c *Conn) takeLocked() entry {
	e := c.queue.pop()
	if c.queue.n == 0 {
		c.capped = false
	}
	return e
}

// written uncharges a message the writer has copied out of its queue.
func (c *Conn) written(e entry) {
	c.held.Add(-int64(e.size))
	c.m.uncharge(e.msg, 1)
}

// dropOldestLocked drops the oldest message. c.mu must be held.
func (c *Conn) dropOldestLocked() {
	c.written(c.takeLocked())
}

// dropQueueLocked drops every queued message. c.mu must be held.
func (c *Conn) dropQueueLocked() {
	for c.queue.n > 0 {
		c.dropOldestLocked()
	}
}
