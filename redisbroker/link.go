package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

var (
	// errConnectionLost fails the confirmations in flight when a Pub/Sub
	// connection ends; their Subscribe calls ask again on the next one.
	errConnectionLost = errors.New("redisbroker: pub/sub connection lost")
	// errUnresponsive is why the health check drops a connection.
	errUnresponsive = errors.New("redisbroker: pub/sub connection unresponsive")
	// errSlotMoved is why a connection whose master gave up a slot is
	// replaced: Redis unsubscribed the slot's channels (SUNSUBSCRIBE).
	errSlotMoved = errors.New("redisbroker: Redis unsubscribed a shard channel: its slot moved")
	// errUnplaced is why the unplaced link does not connect.
	errUnplaced = errors.New("redisbroker: no master known for the channels: the cluster's slot map is unavailable")
)

// The PINGs a link sends for itself. Their answers are told apart from the
// confirmations' by their payload.
const (
	connectToken = "wsroom-connect" // dials a new connection
	readyToken   = "wsroom-ready"   // follows a new connection's SUBSCRIBEs
	healthToken  = "wsroom-health"  // asks a silent connection for a sign of life
)

// A link is one Pub/Sub connection and the channels subscribed on it: the
// only one without a cluster, or the one to a cluster master, for the
// channels of the slots it owns. A goroutine of its own (run) makes the
// connection, subscribes its channels, reads it, has it checked by the
// health check, and makes it again when it fails, with backoff. With a
// cluster, it first moves the channels whose slot another master owns now
// to that master's link, and ends once it has no channel left.
//
// At most one connection of a link is live at a time, and a channel is on
// one link at a time, moved only while its link has no connection: no
// message is ever received twice.
type link struct {
	b       *Broker
	addr    string // the master's address with a cluster ("" for the unplaced link); the server's otherwise
	sharded bool   // SSUBSCRIBE, for a cluster

	start    time.Time    // the base of lastRead, for a monotonic clock
	lastRead atomic.Int64 // when the connection last gave a reply, in ns since start

	// Guarded by b.mu.
	client   redis.UniversalClient // makes the connection; nil for the unplaced link
	channels map[string]*channel   // the channels placed here
	ps       *redis.PubSub         // the live connection, nil while there is none
	dialing  *redis.PubSub         // the connection being made, for Close
	failing  bool                  // the last attempt to connect failed
	changed  chan struct{}         // closed and replaced when ps or failing change, or channels move away
	waiters  map[string]chan error // confirmations in flight on ps, by token
	unsubs   map[string]int        // SUNSUBSCRIBEs sent on ps whose replies are due, by channel
	down     bool                  // lost and not yet restored: logged, and counted when restored
	killed   error                 // why the health check closed ps
}

// newLinkLocked makes a link and starts its goroutine. b.mu is held and b
// is not closed.
func (b *Broker) newLinkLocked(addr string, client redis.UniversalClient, sharded bool) *link {
	if c, ok := client.(*redis.Client); ok {
		switch {
		case c == nil:
			client = nil // the unplaced link has no client
		case addr == "":
			addr = c.Options().Addr
		}
	}
	l := &link{
		b:        b,
		addr:     addr,
		sharded:  sharded,
		start:    time.Now(),
		client:   client,
		channels: make(map[string]*channel),
		changed:  make(chan struct{}),
		waiters:  make(map[string]chan error),
		unsubs:   make(map[string]int),
	}
	if sharded {
		b.links[addr] = l
	}
	b.wg.Add(1)
	go l.run()
	return l
}

func (l *link) run() {
	b := l.b
	defer b.wg.Done()
	backoff := minBackoff
	for {
		if l.sharded && !l.place() {
			return
		}
		served, err := l.session()
		if b.ctx.Err() != nil {
			return
		}
		l.fail(err, served)
		if served {
			backoff = minBackoff
		}
		if !sleep(b.ctx, backoff) {
			return
		}
		if !served {
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// session makes a connection, subscribes every channel of the link on it
// and reads it until it fails. served reports whether it worked: Redis
// answered the PING that follows the SUBSCRIBEs.
func (l *link) session() (served bool, err error) {
	b := l.b
	b.mu.Lock()
	client := l.client
	if b.closed {
		b.mu.Unlock()
		return false, wsroom.ErrClosed
	}
	if client == nil {
		b.mu.Unlock()
		return false, errUnplaced
	}
	ps := client.Subscribe(b.ctx)
	l.dialing = ps
	b.mu.Unlock()

	// go-redis dials for the first command: outside every lock.
	if err := ps.Ping(b.ctx, connectToken); err != nil {
		l.discard(ps)
		return false, err
	}
	// The SUBSCRIBEs of every channel placed here, then the connection made
	// live, in one step for Subscribe and release, which take cmdMu too: a
	// channel placed afterwards is subscribed by its Subscribe.
	b.cmdMu.Lock()
	b.mu.Lock()
	names := slices.Collect(maps.Keys(l.channels))
	b.mu.Unlock()
	err = l.subscribe(b.ctx, ps, names...)
	if err == nil {
		err = ps.Ping(b.ctx, readyToken)
	}
	if err == nil {
		b.mu.Lock()
		if l.dialing == ps { // else Close took it
			l.ps, l.dialing, l.failing = ps, nil, false
			l.unsubs = make(map[string]int)
			l.killed = nil
			l.notifyLocked()
		}
		b.mu.Unlock()
	}
	b.cmdMu.Unlock()
	if err != nil {
		l.discard(ps)
		return false, err
	}

	l.lastRead.Store(l.now())
	stop := l.watch(ps)
	served, err = l.serve(ps)
	stop()

	b.mu.Lock()
	if l.killed != nil {
		err, l.killed = l.killed, nil
	}
	if l.ps == ps {
		l.ps = nil
	}
	for token, answer := range l.waiters {
		answer <- errConnectionLost
		delete(l.waiters, token)
	}
	l.notifyLocked()
	b.mu.Unlock()
	_ = ps.Close()
	return served, err
}

// discard closes a connection that never went live.
func (l *link) discard(ps *redis.PubSub) {
	l.b.mu.Lock()
	if l.dialing == ps {
		l.dialing = nil
	}
	l.b.mu.Unlock()
	_ = ps.Close()
}

// fail records the end of a session: a failed attempt makes Subscribe
// succeed at once, pending, until a connection works again. The first
// failure of an outage is logged. With a cluster, the slot map is reloaded
// in the background, for place to find where the slots went.
func (l *link) fail(err error, served bool) {
	b := l.b
	b.mu.Lock()
	if !served {
		l.failing = true
		l.notifyLocked()
	}
	wasDown := l.down
	l.down = true
	b.mu.Unlock()
	if !wasDown {
		b.log.Warn("redisbroker: pub/sub connection lost", "addr", l.addr, "err", err)
	}
	if b.cluster != nil {
		b.cluster.ReloadState(b.ctx)
	}
}

// serve reads ps until it fails, and hands what it reads on: messages to
// the subscriptions' queues, never waiting for a delivery, and PING
// answers to the confirmations waiting for them.
func (l *link) serve(ps *redis.PubSub) (served bool, err error) {
	b := l.b
	for {
		msg, err := ps.Receive(b.ctx)
		if err != nil {
			return served, err
		}
		l.lastRead.Store(l.now())
		switch m := msg.(type) {
		case *redis.Message:
			b.stats.received.Add(1)
			b.dispatch(m.Channel, []byte(m.Payload))
		case *redis.Pong:
			if m.Payload == readyToken && !served {
				served = true
				l.restored()
			} else {
				l.answer(m.Payload)
			}
		case *redis.Subscription:
			if m.Kind == "sunsubscribe" && l.droppedByRedis(m.Channel) {
				return served, fmt.Errorf("%w: %s", errSlotMoved, m.Channel)
			}
		}
	}
}

// restored counts and logs a connection that works again after failing.
func (l *link) restored() {
	b := l.b
	b.mu.Lock()
	wasDown := l.down
	l.down = false
	b.mu.Unlock()
	if wasDown {
		b.stats.reconnects.Add(1)
		b.log.Info("redisbroker: pub/sub connection restored", "addr", l.addr)
	}
}

// answer completes the confirmation whose PING carried token.
func (l *link) answer(token string) {
	l.b.mu.Lock()
	answer := l.waiters[token]
	delete(l.waiters, token)
	l.b.mu.Unlock()
	if answer != nil {
		answer <- nil
	}
}

// droppedByRedis reports whether an SUNSUBSCRIBE reply for channel came from
// Redis on its own, for a channel still placed here, rather than answering
// the broker's own SUNSUBSCRIBE: the master no longer owns its slot.
func (l *link) droppedByRedis(channel string) bool {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if n := l.unsubs[channel]; n > 0 {
		if n == 1 {
			delete(l.unsubs, channel)
		} else {
			l.unsubs[channel] = n - 1
		}
		return false
	}
	_, placed := l.channels[channel]
	return placed
}

// watch starts the health check of ps: a connection that has given no reply
// for the health check interval is sent a PING; one that has given none for
// twice the interval is closed, which ends serve. stop ends the check.
func (l *link) watch(ps *redis.PubSub) (stop func()) {
	every := l.b.health
	if every <= 0 {
		return func() {}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(max(every/4, time.Millisecond))
		defer tick.Stop()
		pinged := int64(-1) // the lastRead that the last PING followed
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			last := l.lastRead.Load()
			silent := time.Duration(l.now() - last)
			switch {
			case silent >= 2*every:
				l.kill(ps, fmt.Errorf("%w: no reply for %v, a PING included", errUnresponsive, silent.Round(time.Millisecond)))
				return
			case silent >= every && pinged != last:
				pinged = last
				ctx, cancel := context.WithTimeout(l.b.ctx, every)
				_ = ps.Ping(ctx, healthToken) // a failed write ends the connection
				cancel()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// kill closes ps, which the health check found unresponsive.
func (l *link) kill(ps *redis.PubSub, reason error) {
	l.b.mu.Lock()
	if l.ps == ps && l.killed == nil {
		l.killed = reason
	}
	l.b.mu.Unlock()
	l.b.stats.unresponsive.Add(1)
	_ = ps.Close()
}

// place moves the link's channels whose slot another master owns now, as
// the cluster client's slot map says, to that master's link, and ends the
// link once it has no channel left. It reports whether the link goes on.
func (l *link) place() bool {
	b := l.b
	b.mu.Lock()
	names := slices.Collect(maps.Keys(l.channels))
	b.mu.Unlock()
	type target struct {
		client *redis.Client
		names  []string
	}
	moves := make(map[string]*target)
	var own *redis.Client
	for _, name := range names {
		addr, client, err := b.master(b.ctx, name)
		switch {
		case b.ctx.Err() != nil:
			return false
		case err != nil:
			// Stays: the next attempt looks again.
		case addr == l.addr:
			own = client
		case moves[addr] == nil:
			moves[addr] = &target{client: client, names: []string{name}}
		default:
			moves[addr].names = append(moves[addr].names, name)
		}
	}

	type subscribing struct {
		to    *link
		ps    *redis.PubSub
		names []string
	}
	var subs []subscribing
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return false
	}
	if own != nil {
		l.client = own // the cluster client may have replaced its node client
	}
	movedTo := make(map[string]int)
	for addr, t := range moves {
		to := b.links[addr]
		if to == nil {
			to = b.newLinkLocked(addr, t.client, true)
			to.down = l.down // its first connection restores the channels
		}
		var moved []string
		for _, name := range t.names {
			ch := l.channels[name]
			if ch == nil {
				continue // released meanwhile
			}
			delete(l.channels, name)
			to.channels[name] = ch
			ch.link = to
			moved = append(moved, name)
		}
		if len(moved) > 0 {
			movedTo[addr] = len(moved)
			b.stats.moved.Add(uint64(len(moved)))
			if to.ps != nil {
				subs = append(subs, subscribing{to, to.ps, moved})
			}
		}
	}
	if len(movedTo) > 0 {
		l.notifyLocked() // confirmations look for their channel's new link
	}
	end := len(l.channels) == 0
	if end {
		delete(b.links, l.addr)
	}
	b.mu.Unlock()
	for _, s := range subs {
		// A failed write ends that connection; its next one subscribes them.
		_ = s.to.subscribe(b.ctx, s.ps, s.names...)
	}
	b.cmdMu.Unlock()
	for addr, n := range movedTo {
		b.log.Info("redisbroker: shard channels moved to another master", "from", l.addr, "to", addr, "channels", n)
	}
	return !end
}

// subscribe sends the SUBSCRIBE (SSUBSCRIBE with a cluster) of names on ps.
// Redis wants one slot per SSUBSCRIBE, so each channel has its own.
func (l *link) subscribe(ctx context.Context, ps *redis.PubSub, names ...string) error {
	if l.sharded {
		for _, name := range names {
			if err := ps.SSubscribe(ctx, name); err != nil {
				return err
			}
		}
		return nil
	}
	for chunk := range slices.Chunk(names, subscribeChunk) {
		if err := ps.Subscribe(ctx, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// unsubscribe sends the UNSUBSCRIBE (SUNSUBSCRIBE with a cluster) of name on
// ps.
func (l *link) unsubscribe(ctx context.Context, ps *redis.PubSub, name string) error {
	if l.sharded {
		return ps.SUnsubscribe(ctx, name)
	}
	return ps.Unsubscribe(ctx, name)
}

// notifyLocked wakes whoever waits for the link to change.
func (l *link) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *link) now() int64 { return int64(time.Since(l.start)) }
