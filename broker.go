package wsroom

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// A Broker carries room broadcasts between the processes (nodes) that share
// it, so that a room can have members in many processes. The manager
// subscribes to a room when the room gets its first local member and closes
// the subscription after the last local member leaves; it publishes every
// room broadcast and delivers what arrives to its local members.
//
// Payloads are opaque to the broker: the manager encodes an envelope (origin
// node, sender, room, message type and payload) and decodes it again on
// delivery. The envelope's wire form is compact and stable:
//
//	byte     version (1)
//	byte     flags: bit 0 set for a binary message
//	uvarint  length of the origin node's ID, then the ID
//	uvarint  length of the sender connection's ID (empty when none), then the ID
//	uvarint  length of the room's name, then the name
//	         the payload, to the end
//
// A payload that does not parse is counted in [Stats].BrokerMalformed and
// dropped.
//
// Guarantees a Broker must give: messages published to a room by one node
// arrive at every subscribed node in publish order; delivery is at most
// once; after the broker's connection drops and returns, subscriptions come
// back without any call from the manager. Implementations: [NewMemoryBroker]
// in this package, and the redisbroker and natsbroker modules.
type Broker interface {
	// Subscribe starts delivering the payloads published to room, by any
	// node (this one included), to deliver, and returns once the
	// subscription is active at the broker, so a publish that starts after
	// Subscribe returns is never missed. deliver is called from one
	// goroutine per subscription, in publish order, and must not block for
	// long. A room may be subscribed again before an earlier subscription to
	// it is closed: each subscription stays active until its own Close.
	//
	// While the broker is unreachable, Subscribe may succeed at once and
	// activate the subscription when the connection returns, so that rooms
	// can still be joined during an outage; what other nodes publish before
	// then is not delivered (delivery is at most once).
	Subscribe(ctx context.Context, room string, deliver func(payload []byte)) (Subscription, error)

	// Publish sends payload to every node subscribed to room. Calls for one
	// room are made one at a time, and their payloads must reach each node
	// in call order. Publish may return before the payload is sent; it
	// returns an error when the broker cannot take it (for example while
	// disconnected).
	Publish(ctx context.Context, room string, payload []byte) error
}

// A Subscription is one active [Broker.Subscribe].
type Subscription interface {
	// Close stops delivery. It is called once and must not block for long.
	Close() error
}

// errBadEnvelope reports a broker payload that is not a wsroom envelope.
var errBadEnvelope = errors.New("wsroom: malformed broker envelope")

const envelopeVersion = 1

// envelope is a room broadcast as it travels through a [Broker].
type envelope struct {
	Node    string  // the publishing node's ID
	Sender  string  // the sending connection's ID, if the broadcast named one with [Except]
	Room    string  // the room the broadcast is for
	Message Message // what was broadcast
}

// appendEnvelope appends e's wire form, described at [Broker], to dst.
func appendEnvelope(dst []byte, e envelope) []byte {
	var flags byte
	if e.Message.binary {
		flags |= 1
	}
	dst = append(dst, envelopeVersion, flags)
	for _, s := range [...]string{e.Node, e.Sender, e.Room} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, e.Message.data...)
}

// parseEnvelope parses the wire form written by appendEnvelope. The
// message's payload is a copy, so b may be reused.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < 2 || b[0] != envelopeVersion || b[1]&^1 != 0 {
		return envelope{}, fmt.Errorf("%w: bad header", errBadEnvelope)
	}
	var e envelope
	e.Message.binary = b[1]&1 != 0
	b = b[2:]
	for _, s := range [...]*string{&e.Node, &e.Sender, &e.Room} {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return envelope{}, fmt.Errorf("%w: bad length", errBadEnvelope)
		}
		*s = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	e.Message.data = append([]byte{}, b...)
	return e, nil
}

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

func (b *memoryBroker) Publish(ctx context.Context, room string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := append([]byte(nil), payload...)
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[room] {
		s.push(p)
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
