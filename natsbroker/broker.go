package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
)

// ErrNotConnected reports a publish refused because the NATS connection is
// down (reconnecting, or closed by its owner). [Broker.Publish] wraps it:
// match it with errors.Is.
var ErrNotConnected = errors.New("natsbroker: not connected to NATS")

// subscribeTimeout bounds the round trip of [Broker.Subscribe] when its
// context has no deadline of its own.
const subscribeTimeout = 10 * time.Second

// Broker is a [wsroom.Broker] over a NATS connection. It holds one NATS
// subscription per room, shared by every [Broker.Subscribe] to that room
// still open, and publishes each room on its own subject (see the package
// documentation). nats.go runs one goroutine per room subscription, which
// delivers that room's messages in order. The broker itself starts no
// goroutine, except with [WithLogger]: then one, which logs the
// connection's status changes until [Broker.Close].
//
// A Broker is safe for concurrent use. One Broker may serve several
// managers of one process.
type Broker struct {
	nc             *nats.Conn
	cfg            config
	log            *slog.Logger
	reconnectsBase uint64

	// With a logger, status receives the connection's status changes and
	// watched is closed when the goroutine that logs them has returned.
	status  chan nats.Status
	watched chan struct{}

	mu     sync.Mutex // guards rooms and the NATS subscribe and unsubscribe calls
	rooms  map[string]*roomSub
	closed atomic.Bool // set under mu; read without it by Publish

	published, publishErrors, received atomic.Uint64
	droppedClosed                      atomic.Uint64 // Dropped of room subscriptions already gone
}

var _ wsroom.Broker = (*Broker)(nil)

// New returns a Broker that publishes and subscribes on nc. The caller
// keeps ownership of nc: [Broker.Close] does not close it, and it should be
// closed only after the Broker. nc should reconnect forever
// (nats.MaxReconnects(-1)); see the package documentation.
func New(nc *nats.Conn, opts ...Option) (*Broker, error) {
	if nc == nil {
		return nil, invalid("nil NATS connection")
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("natsbroker: new: %w", nats.ErrConnectionClosed)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		nc:             nc,
		cfg:            cfg,
		log:            cfg.logger,
		reconnectsBase: nc.Stats().Reconnects,
		rooms:          make(map[string]*roomSub),
	}
	if cfg.logger != silent {
		b.status = nc.StatusChanged(nats.RECONNECTING, nats.DISCONNECTED, nats.CONNECTED, nats.CLOSED)
		b.watched = make(chan struct{})
		go b.watch(!nc.IsConnected())
	}
	return b, nil
}

// Subject returns the NATS subject the room is published on.
func (b *Broker) Subject(room string) string {
	return b.cfg.prefix + "." + roomToken(room)
}

// Publish sends payload to every node subscribed to room, this one
// included. It returns once nats.go has buffered the payload, before it is
// written to the socket; payloads published on this connection reach the
// server in call order. Its errors match [ErrNotConnected] while the
// connection is down, [wsroom.ErrClosed] after [Broker.Close], and
// nats.ErrMaxPayload when payload exceeds the server's limit (1 MiB by
// default).
func (b *Broker) Publish(ctx context.Context, room string, payload []byte) error {
	if err := b.publish(ctx, room, payload); err != nil {
		b.publishErrors.Add(1)
		return fmt.Errorf("natsbroker: publish to room %q: %w", room, err)
	}
	b.published.Add(1)
	return nil
}

func (b *Broker) publish(ctx context.Context, room string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed.Load() {
		return wsroom.ErrClosed
	}
	// Checked first so that an outage is reported, not buffered by nats.go
	// for a reconnection that may never come. A disconnection that races
	// with this check leaves the payload in that buffer, which is sent
	// after reconnecting: still at most once and in order.
	if !b.nc.IsConnected() {
		return ErrNotConnected
	}
	return b.nc.Publish(b.Subject(room), payload)
}

// Subscribe delivers every payload published to room, by any node, to
// deliver, from nats.go's delivery goroutine for the room and in the order
// the server received them. It returns once the server has the
// subscription, so a publish made after Subscribe returns is never missed;
// a context without a deadline is given 10 s for that round trip. While the
// connection is down it returns at once and the subscription becomes
// active when nats.go reconnects. deliver must not modify the payload,
// which is shared by the room's subscriptions, and must not block for long.
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(payload []byte)) (wsroom.Subscription, error) {
	if deliver == nil {
		return nil, fmt.Errorf("natsbroker: subscribe to room %q: nil deliver func", room)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsbroker: subscribe to room %q: %w", room, err)
	}
	s, err := b.attach(room, deliver)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: subscribe to room %q: %w", room, err)
	}
	if err := b.confirm(ctx, room); err != nil {
		if cerr := s.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("natsbroker: subscribe to room %q: %w", room, err)
	}
	return s, nil
}

// confirm waits for the server to answer a PING sent after every SUB this
// connection has sent so far, the new one included.
func (b *Broker) confirm(ctx context.Context, room string) error {
	if !b.nc.IsConnected() {
		// nats.go sends every subscription when it reconnects.
		b.log.Debug("natsbroker: not connected; subscription pending", "room", room)
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, subscribeTimeout)
		defer cancel()
	}
	err := b.nc.FlushWithContext(ctx)
	if err != nil && ctx.Err() == nil && !b.nc.IsClosed() {
		// The connection dropped during the round trip: as above, the
		// subscription is sent again on reconnection.
		b.log.Debug("natsbroker: connection lost while subscribing; subscription pending", "room", room, "err", err)
		return nil
	}
	return err
}

// attach adds a subscription to room's NATS subscription, creating that
// first if needed.
func (b *Broker) attach(room string, deliver func([]byte)) (*subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil, wsroom.ErrClosed
	}
	rs := b.rooms[room]
	if rs == nil {
		rs = &roomSub{b: b, room: room}
		rs.handles.Store(&[]*subscription{})
		sub, err := b.nc.Subscribe(b.Subject(room), rs.onMsg)
		if err != nil {
			return nil, err
		}
		if err := sub.SetPendingLimits(b.cfg.pendingMsgs, b.cfg.pendingBytes); err != nil {
			_ = sub.Unsubscribe() // never used; the SetPendingLimits error is the one to report
			return nil, err
		}
		rs.sub = sub
		b.rooms[room] = rs
	}
	s := &subscription{b: b, room: room, rs: rs, deliver: deliver}
	handles := append(append([]*subscription(nil), *rs.handles.Load()...), s)
	rs.handles.Store(&handles)
	return s, nil
}

// detach removes s from its room and unsubscribes the room from NATS once
// no subscription is left.
func (b *Broker) detach(s *subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs := b.rooms[s.room]
	if rs != s.rs {
		return nil // the broker is closed and has unsubscribed the room
	}
	var handles []*subscription
	for _, h := range *rs.handles.Load() {
		if h != s {
			handles = append(handles, h)
		}
	}
	rs.handles.Store(&handles)
	if len(handles) > 0 {
		return nil
	}
	delete(b.rooms, s.room)
	return b.unsubscribe(rs)
}

// unsubscribe ends a room's NATS subscription. Unsubscribing only queues
// an UNSUB for nats.go's writer, so b.mu is held for it: Stats never counts
// a room whose subscription is gone, nor misses one that is still there.
func (b *Broker) unsubscribe(rs *roomSub) error {
	if n, err := rs.sub.Dropped(); err == nil {
		b.droppedClosed.Add(uint64(n))
	}
	err := rs.sub.Unsubscribe()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
		return nil // the server drops the subscription with the connection
	}
	if err != nil {
		return fmt.Errorf("natsbroker: unsubscribe from room %q: %w", rs.room, err)
	}
	return nil
}

// Close unsubscribes every room and stops the goroutine of [WithLogger];
// afterwards Publish and Subscribe fail with an error matching
// [wsroom.ErrClosed], and closing a subscription is a no-op. Close does not
// close the NATS connection. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Swap(true) {
		return nil
	}
	if b.status != nil {
		b.nc.RemoveStatusListener(b.status) // closes b.status
		<-b.watched
	}
	rooms := b.rooms
	b.rooms = make(map[string]*roomSub)
	var errs []error
	for _, rs := range rooms {
		for _, h := range *rs.handles.Load() {
			h.closed.Store(true)
		}
		if err := b.unsubscribe(rs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats is a snapshot of a broker's counters. Counts are totals since
// [New], except Connected and Subscriptions.
type Stats struct {
	Connected     bool // the NATS connection is up
	Subscriptions int  // rooms with a NATS subscription

	Published     uint64 // payloads handed to NATS
	PublishErrors uint64 // publishes refused: not connected, too large, closed
	Received      uint64 // messages NATS delivered, once per room, this node's own included
	Dropped       uint64 // messages nats.go dropped because a room was over its pending limits
	Reconnects    uint64 // times the NATS connection reconnected
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	subs := len(b.rooms)
	dropped := b.droppedClosed.Load()
	for _, rs := range b.rooms {
		if n, err := rs.sub.Dropped(); err == nil {
			dropped += uint64(n)
		}
	}
	b.mu.Unlock()
	return Stats{
		Connected:     b.nc.IsConnected(),
		Subscriptions: subs,
		Published:     b.published.Load(),
		PublishErrors: b.publishErrors.Load(),
		Received:      b.received.Load(),
		Dropped:       dropped,
		Reconnects:    b.nc.Stats().Reconnects - b.reconnectsBase,
	}
}

// roomSub is a room's NATS subscription and the subscriptions sharing it.
type roomSub struct {
	b    *Broker
	room string
	sub  *nats.Subscription
	// handles is replaced, never modified, under b.mu, so that onMsg reads
	// it without a lock.
	handles atomic.Pointer[[]*subscription]
}

func (rs *roomSub) onMsg(msg *nats.Msg) {
	rs.b.received.Add(1)
	for _, s := range *rs.handles.Load() {
		if !s.closed.Load() {
			s.deliver(msg.Data)
		}
	}
}

// subscription is one [Broker.Subscribe].
type subscription struct {
	b       *Broker
	room    string
	rs      *roomSub
	deliver func([]byte)
	closed  atomic.Bool
}

// Close stops delivery to this subscription, and unsubscribes the room
// from NATS if it was the room's last. It does not wait for the server.
func (s *subscription) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.b.detach(s)
}

// watch logs the status changes of the connection until Close closes
// b.status. down says whether the connection was down when New was called.
func (b *Broker) watch(down bool) {
	defer close(b.watched)
	if down {
		b.log.Warn("natsbroker: not connected to NATS yet")
	}
	for s := range b.status {
		switch s {
		case nats.RECONNECTING, nats.DISCONNECTED:
			if !down {
				down = true
				b.log.Warn("natsbroker: NATS connection lost", "err", b.nc.LastError())
			}
		case nats.CONNECTED:
			if down {
				down = false
				b.log.Info("natsbroker: NATS connection restored")
			}
		case nats.CLOSED:
			b.log.Warn("natsbroker: NATS connection closed; publishes fail from now on")
			return
		}
	}
}
