package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

const (
	// unsubscribeTimeout bounds the UNSUBSCRIBE sent by the last
	// Subscription.Close of a room, which must not block for long.
	unsubscribeTimeout = 2 * time.Second

	// A link retries a failed Pub/Sub connection after minBackoff, doubling
	// up to maxBackoff. maxBackoff bounds how long a node stays deaf after
	// Redis is back.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 500 * time.Millisecond

	// resolveTimeout bounds the lookup of a channel's master in a cluster,
	// which loads the cluster's slot map the first time.
	resolveTimeout = 2 * time.Second

	// pendingLimit bounds the deliveries queued to one subscription. The
	// manager's deliver only queues, so reaching it means a stuck deliver;
	// further messages are dropped and counted in [Stats].Dropped.
	pendingLimit = 1 << 16

	// subscribeChunk bounds the channels of one SUBSCRIBE command.
	subscribeChunk = 512

	confirmPrefix = "wsroom-confirm-"
)

// Broker is a [wsroom.Broker] over Redis Pub/Sub, or sharded Pub/Sub on a
// Redis Cluster. Create it with [New] and give it to [wsroom.WithBroker];
// stop it with [Broker.Close] after the manager's Shutdown. All methods are
// safe for concurrent use.
type Broker struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // client, when it is one: sharded Pub/Sub
	prefix  string
	log     *slog.Logger
	health  time.Duration // see WithHealthCheck; 0: off

	ctx    context.Context // cancelled by Close; bounds the links' dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // links, publishes in flight, deliveries

	// pubSem is held from a Publish's start until its commands are done,
	// even when the Publish returned first at the end of its context: the
	// next batch waits for it, so batches never overtake each other.
	pubSem chan struct{}

	// cmdMu orders the (UN)SUBSCRIBE commands, and the confirmation PINGs,
	// the same way as the changes to channels and links they follow: a room
	// closed and opened again at once ends up subscribed, and a PING that
	// confirms a subscription follows its SUBSCRIBE on the same connection.
	cmdMu sync.Mutex

	mu       sync.Mutex
	channels map[string]*channel // channels with open subscriptions, by name
	single   *link               // the one link, without a cluster
	links    map[string]*link    // with a cluster: links by master address
	closed   bool

	nextToken atomic.Uint64
	stats     counters
}

// channel is a Redis channel with open subscriptions: a room with local
// members.
type channel struct {
	name string
	subs []*subscription
	link *link // the connection it is subscribed on, or will be
}

var _ wsroom.Broker = (*Broker)(nil)

// New returns a Broker that publishes with client and receives on Pub/Sub
// connections of client's. It does not wait for Redis: the connections are
// made in the background, and remade while Redis is unreachable. The caller
// keeps ownership of client: [Broker.Close] does not close it.
//
// With a *redis.ClusterClient, the broker uses sharded Pub/Sub (SPUBLISH
// and SSUBSCRIBE, Redis 7.0 or later): each room's channel lives on the
// master that owns its slot, and the broker keeps one Pub/Sub connection to
// each master its rooms have needed, and closes one whose channels have all
// moved to other masters. Any other redis.UniversalClient (such
// as a *redis.Client) gets PUBLISH and SUBSCRIBE on one Pub/Sub connection.
func New(client redis.UniversalClient, opts ...Option) (*Broker, error) {
	if client == nil {
		return nil, invalid("nil client")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		client:   client,
		prefix:   cfg.prefix,
		log:      cfg.logger,
		health:   cfg.health,
		ctx:      ctx,
		cancel:   cancel,
		pubSem:   make(chan struct{}, 1),
		channels: make(map[string]*channel),
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		b.cluster = cc
		b.links = make(map[string]*link)
		return b, nil
	}
	b.mu.Lock()
	b.single = b.newLinkLocked("", client, false)
	b.mu.Unlock()
	return b, nil
}

// Subscribe implements [wsroom.Broker]. The first subscription to a room
// subscribes its channel on the Pub/Sub connection that serves it; later
// ones share it. Subscribe returns once Redis has confirmed the
// subscription: it sends a PING on that connection after the SUBSCRIBE and
// waits for the answer, which Redis gives only after it has processed the
// SUBSCRIBE. ctx bounds the wait.
//
// While Redis is unreachable (the last attempt to connect failed),
// Subscribe succeeds at once and the subscription becomes active when the
// connection returns, so rooms can still be joined during an outage; what
// is published before then is not delivered. It fails on ctx's end or after
// [Broker.Close].
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(payload []byte)) (wsroom.Subscription, error) {
	if deliver == nil {
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: nil deliver func", room)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, err)
	}
	s := &subscription{b: b, channel: channelName(b.prefix, room), deliver: deliver}
	var addr string
	var node *redis.Client
	if b.cluster != nil {
		var err error
		if addr, node, err = b.master(ctx, s.channel); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, ctx.Err())
			}
			// The cluster is unreachable: the channel waits on the unplaced
			// link, which places it once the cluster answers.
			b.log.Debug("redisbroker: cannot find the channel's master", "channel", s.channel, "err", err)
		}
	}

	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, wsroom.ErrClosed)
	}
	ch := b.channels[s.channel]
	first := ch == nil
	if first {
		ch = &channel{name: s.channel}
		b.channels[s.channel] = ch
		l := b.single
		if b.cluster != nil {
			l = b.links[addr]
			if l == nil {
				l = b.newLinkLocked(addr, node, true)
			}
		}
		l.channels[ch.name] = ch
		ch.link = l
	}
	ch.subs = append(ch.subs, s)
	l, ps := ch.link, ch.link.ps
	b.mu.Unlock()
	var err error
	if first && ps != nil {
		// A connection made later subscribes every channel of its link.
		err = l.subscribe(ctx, ps, ch.name)
	}
	b.cmdMu.Unlock()

	pending := false
	if err == nil || ctx.Err() == nil {
		// A failed SUBSCRIBE broke the connection: confirm waits for the next.
		pending, err = b.confirm(ctx, ch)
	}
	if err != nil {
		s.stop()
		b.release(s)
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, err)
	}
	if pending {
		b.log.Debug("redisbroker: Redis unreachable; subscription pending", "channel", s.channel)
	}
	return s, nil
}

// confirm returns once Redis has answered a PING sent, after every SUBSCRIBE
// of ch, on the connection ch is subscribed on. A connection lost on the
// way is replaced, and subscribes ch before anything else; confirm then asks
// again. It returns pending, and no error, when the last attempt to connect
// failed: the subscription becomes active with the connection.
func (b *Broker) confirm(ctx context.Context, ch *channel) (pending bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		b.cmdMu.Lock()
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			b.cmdMu.Unlock()
			return false, wsroom.ErrClosed
		}
		l := ch.link
		ps, failing, changed := l.ps, l.failing, l.changed
		var token string
		var answer chan error
		if ps != nil {
			token = confirmPrefix + strconv.FormatUint(b.nextToken.Add(1), 10)
			answer = make(chan error, 1)
			l.waiters[token] = answer
		}
		b.mu.Unlock()
		if ps == nil {
			b.cmdMu.Unlock()
			if failing {
				return true, nil
			}
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		// A failed write breaks the connection, whose end fails the waiter.
		_ = ps.Ping(ctx, token)
		b.cmdMu.Unlock()
		select {
		case err := <-answer:
			if errors.Is(err, errConnectionLost) {
				continue
			}
			return false, err
		case <-ctx.Done():
			b.mu.Lock()
			delete(l.waiters, token)
			b.mu.Unlock()
			return false, ctx.Err()
		}
	}
}

// release removes s from its channel and unsubscribes the channel if s was
// the last subscription to it.
func (b *Broker) release(s *subscription) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	ch := b.channels[s.channel]
	if ch == nil {
		b.mu.Unlock()
		return
	}
	ch.subs = slices.DeleteFunc(ch.subs, func(o *subscription) bool { return o == s })
	if len(ch.subs) > 0 {
		b.mu.Unlock()
		return
	}
	delete(b.channels, ch.name)
	l := ch.link
	delete(l.channels, ch.name)
	ps := l.ps
	if ps != nil && l.sharded {
		l.unsubs[ch.name]++
	}
	closed := b.closed
	b.mu.Unlock()
	if ps == nil || closed {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, unsubscribeTimeout)
	defer cancel()
	// A failed write breaks the connection, which drops the subscription at
	// Redis too, and the next connection does not subscribe the channel:
	// nothing is left to clean up, so the error is not the caller's problem.
	if err := l.unsubscribe(ctx, ps, ch.name); err != nil {
		b.log.Debug("redisbroker: unsubscribe failed; the connection is replaced", "channel", ch.name, "err", err)
	}
}

// Close stops the broker: it closes its Pub/Sub connections, ends every
// subscription's deliveries and waits for the broker's goroutines, including
// a deliver call in progress and a Publish's commands still in flight (which
// the client's read timeout bounds). Later calls to Publish and Subscribe
// fail with an error matching [wsroom.ErrClosed]. Close does not close the
// client given to [New]. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var conns []*redis.PubSub
	for _, l := range b.allLinksLocked() {
		for token, answer := range l.waiters {
			answer <- wsroom.ErrClosed
			delete(l.waiters, token)
		}
		for _, ps := range []*redis.PubSub{l.ps, l.dialing} {
			if ps != nil {
				conns = append(conns, ps)
			}
		}
	}
	var open []*subscription
	for _, ch := range b.channels {
		open = append(open, ch.subs...)
	}
	b.mu.Unlock()

	b.cancel()
	var err error
	for _, ps := range conns {
		if e := ps.Close(); e != nil && !errors.Is(e, redis.ErrClosed) && err == nil {
			err = e
		}
	}
	for _, s := range open {
		s.stop()
	}
	b.wg.Wait()
	if err != nil {
		return fmt.Errorf("redisbroker: close: %w", err)
	}
	return nil
}

// allLinksLocked returns every link of the broker.
func (b *Broker) allLinksLocked() []*link {
	if b.single != nil {
		return []*link{b.single}
	}
	links := make([]*link, 0, len(b.links))
	for _, l := range b.links {
		links = append(links, l)
	}
	return links
}

// master returns the address and the client of the cluster master that
// owns channel's slot, as the cluster client's slot map says.
func (b *Broker) master(ctx context.Context, channel string) (string, *redis.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	c, err := b.cluster.MasterForKey(ctx, channel)
	if err != nil {
		return "", nil, err
	}
	return c.Options().Addr, c, nil
}

// dispatch queues payload to every open subscription of channel.
func (b *Broker) dispatch(channel string, payload []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch := b.channels[channel]; ch != nil {
		for _, s := range ch.subs {
			s.push(payload)
		}
	}
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
