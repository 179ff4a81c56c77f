package wsroom

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
	size := max(8, 2*len(q.ring))
	ring := make([]Message, size)
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

// reset empties the queue. A ring larger than the first one is dropped,
// so that an idle connection holds at most 8 entries and a burst's ring
// goes back to the heap.
func (q *queue) reset() {
	if len(q.ring) > 8 {
		q.ring = nil
	} else {
		clear(q.ring)
	}
	q.head, q.n, q.bytes = 0, 0, 0
}
