package redisbroker

import "sync"

// subscription is one open [Broker.Subscribe]. Deliveries are queued by the
// reader and run, in arrival order, on a goroutine that exists only while
// the queue is non-empty, so a slow deliver never holds up the reader or
// another room.
type subscription struct {
	b       *Broker
	channel string
	deliver func([]byte)

	closeOnce sync.Once

	mu       sync.Mutex
	pending  [][]byte
	running  bool
	stopped  bool
	dropping bool // the queue is full; logged once per overflow
}

// Close implements [wsroom.Subscription]: it stops deliveries at once (a
// deliver call in progress completes) and, if this was the room's last
// subscription, UNSUBSCRIBEs its channel, waiting at most a couple of
// seconds for Redis. It always returns nil.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.b.release(s)
	})
	return nil
}

// stop ends deliveries and drops what is queued.
func (s *subscription) stop() {
	s.mu.Lock()
	s.stopped = true
	s.pending = nil
	s.mu.Unlock()
}

// push queues payload for delivery. It is called by the reader with the
// broker's mu held, so the broker's WaitGroup cannot be waited on yet.
func (s *subscription) push(payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if len(s.pending) >= pendingLimit {
		s.b.stats.dropped.Add(1)
		if !s.dropping {
			s.dropping = true
			s.b.log.Warn("redisbroker: delivery queue full, dropping messages", "channel", s.channel, "limit", pendingLimit)
		}
		return
	}
	s.dropping = false
	s.pending = append(s.pending, payload)
	if !s.running {
		s.running = true
		s.b.wg.Add(1)
		go s.run()
	}
}

func (s *subscription) run() {
	defer s.b.wg.Done()
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		if len(batch) == 0 || s.stopped {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, p := range batch {
			if s.isStopped() {
				break
			}
			s.deliver(p)
		}
	}
}

func (s *subscription) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}
