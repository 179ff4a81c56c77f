package wsroom

import (
	"context"
	"fmt"
	"hash/maphash"
)

// A Broker carries room broadcasts between the processes (nodes) that share
// it, so that a room can have members in many processes. The manager
// subscribes to a room when the room gets its first local member and closes
// the subscription after the last local member leaves; it publishes every
// room broadcast and delivers what arrives to its local members.
//
// Payloads are opaque to the broker: the manager encodes an envelope (origin
// node, sender, room, message type and payload) and decodes it again on
// delivery (its wire form is described in envelope.go). A payload that does
// not parse, or carries a text message that is not UTF-8, is counted in
// [Stats].BrokerMalformed and dropped.
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

// subscribe makes sure r is subscribed at the broker. The room's
// subscription lock is held during Subscribe, so that two joins do not
// subscribe twice.
func (m *ConnectionManager) subscribe(ctx context.Context, r *room) error {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	if r.sub != nil {
		return nil
	}
	sub, err := m.cfg.broker.Subscribe(ctx, r.name, func(p []byte) { m.receive(r, p) })
	if err != nil {
		return fmt.Errorf("wsroom: subscribe to room %q: %w", r.name, err)
	}
	r.sub = sub
	return nil
}

// publish delivers msg to the room's local members and hands it to the
// broker. One of 64 locks, chosen by the room's name, is held across both,
// so that this node's broadcasts to a room reach the broker in the order
// its local members saw them.
func (m *ConnectionManager) publish(ctx context.Context, room string, msg Message, except []*Conn) error {
	lock := &m.publishLocks[maphash.String(m.publishSeed, room)%uint64(len(m.publishLocks))]
	lock.Lock()
	defer lock.Unlock()
	m.deliver(m.lookupRoom(room), msg, except)
	env := envelope{Node: m.nodeID, Room: room, Message: msg}
	if len(except) > 0 {
		env.Sender = except[0].id
	}
	if err := m.cfg.broker.Publish(ctx, room, appendEnvelope(nil, env)); err != nil {
		m.stats.brokerPublishErrors.Add(1)
		return fmt.Errorf("wsroom: publish to room %q: %w", room, err)
	}
	m.stats.brokerPublished.Add(1)
	return nil
}

// receive handles a payload the broker delivered on r's subscription. It
// delivers to r itself, not to the room of that name: while a freed room's
// subscription is closing, a new room of the same name has its own.
func (m *ConnectionManager) receive(r *room, payload []byte) {
	env, err := parseEnvelope(payload)
	if err == nil && env.Room != r.name {
		err = fmt.Errorf("%w: room %q on the subscription of %q", errBadEnvelope, env.Room, r.name)
	}
	if err != nil {
		m.stats.brokerMalformed.Add(1)
		m.cfg.logger.Warn("wsroom: dropped broker message", "room", r.name, "err", err)
		return
	}
	if env.Node == m.nodeID {
		return // delivered locally when it was broadcast
	}
	m.stats.brokerReceived.Add(1)
	m.deliver(r, env.Message, nil)
}
