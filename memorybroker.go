package wsroom

import (
	"context"
	"sync"
)

// NewMemoryBroker returns a [Broker] that connects the managers of one
// process. It is what tests of multi-node behaviour use without a server,
// and it gives every guarantee a Broker must give. A manager without any
// broker needs none of this: its rooms are simply local.
func NewMemoryBroker() Broker {
	return &memoryBroker{subs: make(map[string]map[*memorySub]struct{})}
}

type memoryBroker struct {
	mu   sync.Mutex
	subs map[string]map[*memorySub]struct{}
}

// memorySub delivers in order from a goroutine of its own, so that a
// publisher never runs a subscriber's delivery.
type memorySub struct {
	b       *memoryBroker
	room    string
	deliver func([]byte)

	mu      sync.Mutex
	pending [][]byte
	running bool
	closed  bool
}

func (b *memoryBroker) Subscribe(_ context.Context, room string, deliver func([]byte)) (Subscription, error) {
	s := &memorySub{b: b, room: room, deliver: deliver}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[room] == nil {
		b.subs[room] = make(map[*memorySub]struct{})
	}
	b.subs[room][s] = struct{}{}
	return s, nil
}

func (b *memoryBroker) Publish(ctx context.Context, batch []Publication) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range batch {
		for s := range b.subs[p.Room] {
			s.push(p.Payload)
		}
	}
	return nil
}

func (s *memorySub) push(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.pending = append(s.pending, p)
	if !s.running {
		s.running = true
		go s.run()
	}
}

func (s *memorySub) run() {
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		if len(batch) == 0 || s.closed {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, p := range batch {
			s.deliver(p)
		}
	}
}

func (s *memorySub) Close() error {
	s.b.mu.Lock()
	delete(s.b.subs[s.room], s)
	if len(s.b.subs[s.room]) == 0 {
		delete(s.b.subs, s.room)
	}
	s.b.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
	return nil
}
