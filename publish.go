package wsroom

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Publishing to the broker. Broadcast delivers to the room's local members
// and appends the envelope to the manager's publish queue, both under the
// room's publish lock, so that the broker gets a room's broadcasts in the
// order its local members saw them. It never waits for the broker: one
// goroutine of the manager's, started while there is something to publish,
// takes what is queued, many rooms at once, and hands it to Broker.Publish
// in one batch, outside every lock.

// maxBatch bounds what one Broker.Publish call carries.
const (
	maxBatch      = 1024
	maxBatchBytes = 1 << 20
)

// publisher is the manager's publish queue and the state of its goroutine.
type publisher struct {
	mu      sync.Mutex
	queue   []Publication
	bytes   int64      // payload bytes in queue
	running bool       // the publisher goroutine runs
	failing error      // the last Publish's error, nil once one succeeds
	idle    *sync.Cond // signalled when the goroutine stops
}

// publish delivers msg to the room's local members and queues it for the
// broker.
func (m *ConnectionManager) publish(room string, msg Message, except []*Conn) error {
	env := appendEnvelope(nil, envelope{Node: m.nodeID, Room: room, Message: msg})
	lock := &m.publishLocks[maphash.String(m.publishSeed, room)%uint64(len(m.publishLocks))]
	lock.Lock()
	m.deliver(m.lookupRoom(room), msg, except)
	err := m.queuePublication(Publication{Room: room, Payload: env})
	lock.Unlock()
	if err != nil {
		return fmt.Errorf("wsroom: publish to room %q: %w", room, err)
	}
	return nil
}

// queuePublication appends p to the publish queue and starts the publisher
// if none runs. It never waits.
func (m *ConnectionManager) queuePublication(p Publication) error {
	pub := &m.pub
	pub.mu.Lock()
	defer pub.mu.Unlock()
	size := int64(len(p.Payload))
	if len(pub.queue) >= m.cfg.publishQueue || len(pub.queue) > 0 && pub.bytes+size > m.cfg.publishBytes {
		m.stats.brokerQueueFull.Add(1)
		return fmt.Errorf("%w: publish queue full (%d broadcasts, %d bytes)", ErrBrokerUnavailable, len(pub.queue), pub.bytes)
	}
	pub.queue = append(pub.queue, p)
	pub.bytes += size
	if !pub.running {
		pub.running = true
		go m.publishLoop()
	}
	if pub.failing != nil {
		return fmt.Errorf("%w: the last publish failed: %w", ErrBrokerUnavailable, pub.failing)
	}
	return nil
}

// publishLoop hands the queue to the broker, a batch at a time, until it is
// empty.
func (m *ConnectionManager) publishLoop() {
	pub := &m.pub
	for {
		pub.mu.Lock()
		if len(pub.queue) == 0 {
			pub.running = false
			pub.idle.Broadcast()
			pub.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(pub.queue) && n < maxBatch && (n == 0 || size+len(pub.queue[n].Payload) <= maxBatchBytes) {
			size += len(pub.queue[n].Payload)
			n++
		}
		batch := pub.queue[:n:n]
		pub.queue = pub.queue[n:]
		if len(pub.queue) == 0 {
			pub.queue = nil // let the backing array go with the batch
		}
		pub.bytes -= int64(size)
		pub.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.publishTimeout)
		start := time.Now()
		err := m.cfg.broker.Publish(ctx, batch)
		took := time.Since(start)
		cancel()
		if f := m.cfg.observer.Published; f != nil {
			f(n, took, err)
		}

		pub.mu.Lock()
		pub.failing = err
		pub.mu.Unlock()
		if err != nil {
			m.stats.brokerPublishErrors.Add(uint64(n))
			m.cfg.logger.Warn("wsroom: broker publish failed", "broadcasts", n, "after", took, "err", err)
			continue
		}
		m.stats.brokerPublished.Add(uint64(n))
		m.stats.brokerBatches.Add(1)
	}
}

// waitPublished waits until the publish queue is empty and no Publish
// runs, or ctx ends.
func (m *ConnectionManager) waitPublished(ctx context.Context) error {
	pub := &m.pub
	stop := context.AfterFunc(ctx, func() {
		pub.mu.Lock()
		pub.idle.Broadcast()
		pub.mu.Unlock()
	})
	defer stop()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for pub.running && ctx.Err() == nil {
		pub.idle.Wait()
	}
	return ctx.Err()
}
