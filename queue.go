package wsroom

import "sync"

// firstRingSize is the size of a queue's first ring. Rings of this size
// come from a pool and go back to it when the queue empties, so that a
// burst costs no allocation and an idle connection holds no ring.
const firstRingSize = 8

var ringPool = sync.Pool{New: func() any { return new([firstRingSize]Message) }}

// queue is a connection's outbound FIFO: a ring of messages that grows on
// demand and is released when it empties, so an idle connection holds none.
type queue struct {
	ring  []Message
	head  int // index of the oldest message
	n     int // messages queued
	bytes int // payload bytes queued
}

func (q *queue) push(m Message) {
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = m
	q.n++
	q.bytes += len(m.data)
}

func (q *queue) grow() {
	if q.ring == nil {
		q.ring = ringPool.Get().(*[firstRingSize]Message)[:]
		return
	}
	ring := make([]Message, 2*len(q.ring))
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// pop removes and returns the oldest message. It must not be called on an
// empty queue.
func (q *queue) pop() Message {
	m := q.ring[q.head]
	q.ring[q.head] = Message{}
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	q.bytes -= len(m.data)
	if q.n == 0 {
		q.reset()
	}
	return m
}

// reset empties the queue and releases its ring: a first ring to the pool,
// a larger one to the garbage collector.
func (q *queue) reset() {
	if len(q.ring) == firstRingSize {
		clear(q.ring)
		ringPool.Put((*[firstRingSize]Message)(q.ring))
	}
	q.ring, q.head, q.n, q.bytes = nil, 0, 0, 0
}
