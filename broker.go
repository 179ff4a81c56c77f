package wsroom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// A Broker carries room broadcasts between the processes (nodes) that share
// it, so that a room can have members in many processes. The manager
// subscribes to a room when the room gets its first local member and closes
// the subscription after the last local member leaves; it publishes every
// room broadcast and delivers what arrives to its local members.
//
// Payloads are opaque to the broker: the manager encodes an envelope (its
// version, the origin node, the room, the message type and payload; see
// envelope.go) and decodes it again on delivery. A payload that does not
// parse, comes from a node speaking another envelope version, or carries a
// text message that is not UTF-8, is counted in [Stats].BrokerMalformed,
// logged and dropped.
//
// The manager never calls a Broker under a lock of its own, and never from
// a Broadcast: broadcasts go through a bounded queue to one goroutine of the
// manager's that hands them to Publish in batches (see [WithPublishQueue]),
// so a broker that is slow or stalled delays no local delivery.
//
// Guarantees a Broker must give: payloads published to a room by one node
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

	// Publish sends a batch of publications, each to the nodes subscribed
	// to its room, in batch order. The manager makes one call at a time,
	// from one goroutine, and a room's publications must reach each node
	// in the order of the calls and of each batch. Publish should send a
	// batch in one round trip where the broker allows it. It returns once
	// the broker has taken the batch, or an error when it could not; part
	// of a failed batch may still have been delivered, but nothing is sent
	// twice. ctx bounds the call. The batch and its payloads are not
	// reused by the manager: Publish may keep them.
	Publish(ctx context.Context, batch []Publication) error
}

// A Publication is one room broadcast on its way to the other nodes.
type Publication struct {
	Room    string
	Payload []byte
}

// A Subscription is one active [Broker.Subscribe].
type Subscription interface {
	// Close stops delivery. It is called once and must not block for long.
	Close() error
}

// subscribe makes sure r is subscribed at the broker. The first join calls
// Subscribe, outside every lock; joins that come meanwhile wait for its
// result.
func (m *ConnectionManager) subscribe(ctx context.Context, r *room) error {
	for {
		r.subMu.Lock()
		switch {
		case r.sub != nil:
			r.subMu.Unlock()
			return nil
		case r.subscribing != nil:
			wait := r.subscribing
			r.subMu.Unlock()
			select {
			case <-wait:
				continue // subscribed, or failed: then this join tries
			case <-ctx.Done():
				return fmt.Errorf("wsroom: subscribe to room %q: %w", r.name, ctx.Err())
			}
		}
		done := make(chan struct{})
		r.subscribing = done
		r.subMu.Unlock()

		sub, err := m.cfg.broker.Subscribe(ctx, r.name, func(p []byte) { m.receive(r, p) })

		r.subMu.Lock()
		if err == nil {
			r.sub = sub
		}
		r.subscribing = nil
		r.subMu.Unlock()
		close(done)
		if err != nil {
			return fmt.Errorf("wsroom: subscribe to room %q: %w", r.name, err)
		}
		return nil
	}
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
		level := slog.LevelWarn
		if errors.Is(err, errEnvelopeVersion) {
			level = slog.LevelError
		}
		m.cfg.logger.Log(context.Background(), level, "wsroom: dropped broker message", "room", r.name, "err", err)
		return
	}
	if env.Node == m.nodeID {
		return // delivered locally when it was broadcast
	}
	m.stats.brokerReceived.Add(1)
	m.deliver(r, env.Message, nil)
}
