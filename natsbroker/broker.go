package natsbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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

// subscribeTimeout and publishTimeout bound the round trip of
// [Broker.Subscribe] and [Broker.Publish] when their context has no
// deadline of its own.
const (
	subscribeTimeout = 10 * time.Second
	publishTimeout   = 5 * time.Second
)

// reconnectGrace is how long Publish waits for a connection that is down
// to come back before it fails: long enough for a move to another server
// of a cluster, so that the broadcasts queued meanwhile are not lost, and
// short enough that an outage is reported at once.
const reconnectGrace = 100 * time.Millisecond

// seqHeader is the NATS header that carries a publication's sequence
// number: the publishing broker's ID, a dot, and the number, which counts
// the broker's publications from 1.
const seqHeader = "Wsroom-Seq"

// Broker is a [wsroom.Broker] over a NATS connection. It holds one NATS
// subscription per room, shared by every [Broker.Subscribe] to that room
// still open, and publishes each room on its own subject (see the package
// documentation). nats.go runs one goroutine per room subscription, which
// delivers that room's messages in order. The broker itself runs one
// goroutine, which follows the connection's status changes (and logs them,
// with [WithLogger]) until [Broker.Close].
//
// A Broker is safe for concurrent use. One Broker may serve several
// managers of one process.
type Broker struct {
	nc             *nats.Conn
	cfg            config
	log            *slog.Logger
	reconnectsBase uint64
	id             string // this broker's ID in seqHeader: 16 random hex digits

	pubMu     sync.Mutex // serializes Publish calls
	seq       uint64     // the last sequence number published; under pubMu
	noHeaders bool       // the server was found to refuse headers; under pubMu

	// status receives the connection's status changes, and watched is
	// closed when the goroutine that follows them has returned.
	status  chan nats.Status
	watched chan struct{}
	// up is the connection's status as that goroutine last saw it. Publish
	// reads it first: while nats.go tries a server that takes connections
	// but does not answer (a paused process), it holds the connection's
	// lock for up to its connect timeout (nats.Timeout, 2 s by default),
	// and every call on the connection waits for it.
	up atomic.Bool
	// upMu guards reconnected, which is closed and replaced each time up
	// becomes true.
	upMu        sync.Mutex
	reconnected chan struct{}

	mu     sync.Mutex // guards rooms and the NATS subscribe and unsubscribe calls
	rooms  map[string]*roomSub
	closed atomic.Bool // set under mu; read without it by Publish

	published, publishErrors, received, outOfOrder atomic.Uint64
	droppedClosed                                  atomic.Uint64 // Dropped of room subscriptions already gone
}

var _ wsroom.Broker = (*Broker)(nil)

// New returns a Broker that publishes and subscribes on nc. The caller
// keeps ownership of nc: [Broker.Close] does not close it, and it should be
// closed only after the Broker. nc should be connected with
// [ClientOptions], or options at least as strict; with [WithLogger], New
// warns of each option that falls short (see [ClientOptions]).
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
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails
	b := &Broker{
		nc:             nc,
		cfg:            cfg,
		log:            cfg.logger,
		reconnectsBase: nc.Stats().Reconnects,
		id:             hex.EncodeToString(id[:]),
		rooms:          make(map[string]*roomSub),
		reconnected:    make(chan struct{}),
	}
	for _, w := range checkOptions(&nc.Opts) {
		b.log.Warn("natsbroker: " + w)
	}
	// Listening first, so that a change after the read below is seen.
	b.status = nc.StatusChanged(nats.RECONNECTING, nats.DISCONNECTED, nats.CONNECTED, nats.CLOSED)
	b.watched = make(chan struct{})
	connected := nc.IsConnected()
	b.up.Store(connected)
	go b.watch(connected)
	return b, nil
}

// Subject returns the NATS subject the room is published on.
func (b *Broker) Subject(room string) string {
	return b.cfg.prefix + "." + roomToken(room)
}

// Publish sends a batch of publications, each on its room's subject, in
// batch order, then makes one round trip to the server (a PING after the
// batch, answered by a PONG), and returns once the server has answered: it
// has then read every publication of the batch. Payloads published on this
// connection reach the server in call order, and each carries this
// broker's sequence number (see [Stats].OutOfOrder). A context without a
// deadline is given 5 s for the round trip.
//
// Publish checks the connection before each publication and stops at the
// first that cannot be handed to nats.go: the publications before it are
// on their way, none after it is sent. While the connection is down it
// waits up to 100 ms for it to come back (moving to another server of a
// cluster takes a few milliseconds), then fails, without waiting for
// nats.go's attempts to reconnect. Its errors match [ErrNotConnected]
// while the connection is down, [wsroom.ErrClosed] after [Broker.Close],
// nats.ErrMaxPayload for a payload over the server's limit (1 MiB by
// default), nats.ErrConnectionClosed when the connection is found dead
// during the round trip, and ctx's error if ctx ends first. The
// publications of a failed batch may still be delivered, each at most once.
func (b *Broker) Publish(ctx context.Context, batch []wsroom.Publication) error {
	if err := b.publish(ctx, batch); err != nil {
		b.publishErrors.Add(uint64(len(batch)))
		return err
	}
	b.published.Add(uint64(len(batch)))
	return nil
}

func (b *Broker) publish(ctx context.Context, batch []wsroom.Publication) error {
	if b.closed.Load() {
		return fmt.Errorf("natsbroker: publish: %w", wsroom.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	// One batch at a time, so that sequence numbers reach the connection
	// in the order they are taken even when several managers share the
	// broker.
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.awaitReconnection(ctx)
	var headers bool
	hdr := nats.Header{seqHeader: []string{""}}
	msg := nats.Msg{Header: hdr}
	for i, p := range batch {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("natsbroker: publish to room %q: %w", p.Room, err)
		}
		// Checked first so that an outage is reported, not buffered by
		// nats.go for a reconnection that may never come. A disconnection
		// that races with this check leaves the payload in that buffer,
		// which is sent after reconnecting: still at most once and in
		// order.
		if !b.up.Load() || !b.nc.IsConnected() {
			return fmt.Errorf("natsbroker: publish to room %q: %w", p.Room, ErrNotConnected)
		}
		if i == 0 {
			headers = b.headersSupported()
		}
		var err error
		if headers {
			b.seq++
			hdr[seqHeader][0] = b.id + "." + strconv.FormatUint(b.seq, 10)
			msg.Subject, msg.Data = b.Subject(p.Room), p.Payload
			err = b.nc.PublishMsg(&msg)
		} else {
			err = b.nc.Publish(b.Subject(p.Room), p.Payload)
		}
		if err != nil {
			return fmt.Errorf("natsbroker: publish to room %q: %w", p.Room, err)
		}
	}
	// The round trip makes Publish report a server that stopped answering
	// (the batch fails once nats.go finds the connection dead) and holds
	// back the next batches meanwhile, in the manager's queue, rather than
	// writing them into a connection that leads nowhere: after a failover
	// they go to the new server.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("natsbroker: publish %d broadcasts: %w", len(batch), err)
	}
	return nil
}

// awaitReconnection waits, while the connection is down, until it is up
// again, reconnectGrace has passed or ctx ends.
func (b *Broker) awaitReconnection(ctx context.Context) {
	b.upMu.Lock()
	reconnected := b.reconnected
	b.upMu.Unlock()
	if b.up.Load() {
		return
	}
	timer := time.NewTimer(reconnectGrace)
	defer timer.Stop()
	select {
	case <-reconnected:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// setUp records the connection's status, and wakes awaitReconnection when
// it comes up.
func (b *Broker) setUp(up bool) {
	if b.up.Swap(up) || !up {
		return
	}
	b.upMu.Lock()
	close(b.reconnected)
	b.reconnected = make(chan struct{})
	b.upMu.Unlock()
}

// headersSupported reports whether the server the connection is on takes
// headers, and warns once if it does not. It is called under pubMu, while
// connected: until then, nats.go knows nothing of the server.
func (b *Broker) headersSupported() bool {
	if b.nc.HeadersSupported() {
		return true
	}
	if !b.noHeaders {
		b.noHeaders = true
		b.log.Warn("natsbroker: the NATS server does not support headers; publishing without sequence numbers, so stale broadcasts are not dropped")
	}
	return false
}

// Subscribe delivers every payload published to room, by any node, to
// deliver, from nats.go's delivery goroutine for the room and in the order
// the server received them, except those older than one already delivered
// from the same broker (see [Stats].OutOfOrder). It returns once the
// server this node is connected to has the subscription, so a publish made
// through that server after Subscribe returns is never missed; a context
// without a deadline is given 10 s for that round trip. In a cluster, that
// server tells the others asynchronously: a publish made through another
// server right as Subscribe returns may miss it (see the package
// documentation). While the connection is down Subscribe returns at once
// and the subscription becomes active when nats.go reconnects. deliver
// must not modify the payload, which is shared by the room's
// subscriptions, and must not block for long.
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

// Close unsubscribes every room and stops the broker's goroutine;
// afterwards Publish and Subscribe fail with an error matching
// [wsroom.ErrClosed], and closing a subscription is a no-op. Close does not
// close the NATS connection. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Swap(true) {
		return nil
	}
	b.nc.RemoveStatusListener(b.status) // closes b.status
	<-b.watched
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

	Published     uint64 // publications of the batches Publish completed
	PublishErrors uint64 // publications of the batches Publish failed: not connected, too large, closed, context ended, connection found dead
	Received      uint64 // messages NATS delivered, once per room, this node's own and those then dropped as OutOfOrder included
	OutOfOrder    uint64 // received messages dropped as older than one already delivered from their publisher
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
		OutOfOrder:    b.outOfOrder.Load(),
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
	// last holds, for each publishing broker's ID, the sequence number of
	// the last message of it delivered on this subscription. Only onMsg,
	// which nats.go calls from one goroutine, uses it.
	last map[string]uint64
}

func (rs *roomSub) onMsg(msg *nats.Msg) {
	rs.b.received.Add(1)
	if !rs.inOrder(msg.Header.Get(seqHeader)) {
		rs.b.outOfOrder.Add(1)
		return
	}
	for _, s := range *rs.handles.Load() {
		if !s.closed.Load() {
			s.deliver(msg.Data)
		}
	}
}

// inOrder reports whether a message whose seqHeader is seq comes after
// every message of its publisher already delivered on this subscription,
// and if so records it as the last. NATS keeps the order of one
// connection's messages, but not across a reconnection: a server that
// stopped answering, and was left for another, may deliver what it had
// buffered when it resumes, after the messages published since. A message
// without a valid seqHeader (not published by a Broker) is delivered.
func (rs *roomSub) inOrder(seq string) bool {
	id, num, ok := strings.Cut(seq, ".")
	if !ok {
		return true
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return true
	}
	last, seen := rs.last[id]
	if seen && n <= last {
		return false
	}
	if rs.last == nil {
		rs.last = make(map[string]uint64)
	}
	if !seen {
		id = strings.Clone(id) // not the whole header block
	}
	rs.last[id] = n
	return true
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

// watch follows the status changes of the connection into b.up, and logs
// them, until Close closes b.status or the connection is closed. connected
// is the status when New was called. nats.go drops a change that finds
// b.status full: so each change is confirmed by reading the status, which
// is then at least as recent as any change dropped, since the buffer still
// held changes to take.
func (b *Broker) watch(connected bool) {
	defer close(b.watched)
	if !connected {
		b.log.Warn("natsbroker: not connected to NATS yet")
	}
	for s := range b.status {
		if s != nats.CONNECTED {
			b.up.Store(false) // at once: the read below may wait for a reconnection attempt
		}
		now := b.nc.IsConnected()
		b.setUp(now)
		switch {
		case b.nc.IsClosed():
			b.log.Warn("natsbroker: NATS connection closed; publishes fail from now on")
			return
		case connected && !now:
			b.log.Warn("natsbroker: NATS connection lost", "err", b.nc.LastError())
		case !connected && now:
			b.log.Info("natsbroker: NATS connection restored")
		}
		connected = now
	}
}
