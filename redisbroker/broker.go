package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

// errConnectionLost fails the confirmations in flight when the Pub/Sub
// connection drops; their Subscribe calls ask again on the next connection.
var errConnectionLost = errors.New("redisbroker: pub/sub connection lost")

const (
	// unsubscribeTimeout bounds the UNSUBSCRIBE sent by the last
	// Subscription.Close of a room, which must not block for long.
	unsubscribeTimeout = 2 * time.Second

	// The reader retries a failed Pub/Sub connection after minBackoff,
	// doubling up to maxBackoff. maxBackoff bounds how long a node stays
	// deaf after Redis is back.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 500 * time.Millisecond

	// pendingLimit bounds the deliveries queued to one subscription. The
	// manager's deliver only queues, so reaching it means a stuck deliver;
	// further messages are dropped and counted in [Stats].Dropped.
	pendingLimit = 1 << 16

	confirmPrefix = "wsroom-confirm-"
)

// Broker is a [wsroom.Broker] over Redis Pub/Sub. Create it with [New] and
// give it to [wsroom.WithBroker]; stop it with [Broker.Close] after the
// manager's Shutdown. All methods are safe for concurrent use.
type Broker struct {
	client redis.UniversalClient
	ps     *redis.PubSub
	prefix string
	log    *slog.Logger

	ctx    context.Context // cancelled by Close; bounds the reader's dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // the reader and the delivery goroutines

	// cmdMu orders SUBSCRIBE and UNSUBSCRIBE commands the same way as the
	// changes to channels they follow, so that a room closed and opened
	// again at once ends up subscribed.
	cmdMu sync.Mutex

	mu       sync.Mutex
	channels map[string][]*subscription // open subscriptions by channel
	waiters  map[string]chan error      // confirmations in flight by token
	closed   bool

	nextToken atomic.Uint64
	stats     counters
}

var _ wsroom.Broker = (*Broker)(nil)

// New returns a Broker that publishes with client and receives on one Pub/Sub
// connection of client's, shared by every room. It starts the goroutine
// that reads that connection; it does not wait for Redis, and keeps retrying
// in the background while Redis is unreachable. The caller keeps ownership
// of client: [Broker.Close] does not close it.
//
// client may be a *redis.Client, *redis.ClusterClient or any other
// redis.UniversalClient.
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
		ps:       client.Subscribe(ctx),
		prefix:   cfg.prefix,
		log:      cfg.logger,
		ctx:      ctx,
		cancel:   cancel,
		channels: make(map[string][]*subscription),
		waiters:  make(map[string]chan error),
	}
	b.wg.Add(1)
	go b.read()
	return b, nil
}

// Subscribe implements [wsroom.Broker]. The first subscription to a room
// SUBSCRIBEs its channel on the shared Pub/Sub connection; later ones share
// it. Subscribe returns once Redis has confirmed the subscription: it sends
// a PING on the Pub/Sub connection after the SUBSCRIBE and waits for the
// answer, which Redis gives only after it has processed the SUBSCRIBE.
// ctx bounds the wait.
//
// While Redis is unreachable (a network error), Subscribe succeeds at once
// and the subscription becomes active when the broker's connection returns,
// so rooms can still be joined during an outage; what is published before
// then is not delivered. It fails on ctx's end or after [Broker.Close].
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(payload []byte)) (wsroom.Subscription, error) {
	if deliver == nil {
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: nil deliver func", room)
	}
	s := &subscription{b: b, channel: channelName(b.prefix, room), deliver: deliver}

	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, wsroom.ErrClosed)
	}
	first := len(b.channels[s.channel]) == 0
	b.channels[s.channel] = append(b.channels[s.channel], s)
	b.mu.Unlock()
	var err error
	if first {
		err = b.ps.Subscribe(ctx, s.channel)
	}
	b.cmdMu.Unlock()

	if err == nil {
		err = b.confirm(ctx)
	}
	if err != nil && ctx.Err() == nil && unreachable(err) {
		// The channel stays in go-redis's set, so the connection the reader
		// dials once Redis is back subscribes it first.
		b.log.Debug("redisbroker: Redis unreachable; subscription pending", "channel", s.channel, "err", err)
		return s, nil
	}
	if err != nil {
		s.stop()
		b.release(s)
		return nil, fmt.Errorf("redisbroker: subscribe to room %q: %w", room, err)
	}
	return s, nil
}

// confirm returns once Redis has answered a PING sent on the Pub/Sub
// connection, and so has processed every command sent on it before.
// A connection lost on the way is replaced by go-redis, which subscribes
// the new one to every channel before sending anything else; confirm then
// asks again.
func (b *Broker) confirm(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		token := confirmPrefix + strconv.FormatUint(b.nextToken.Add(1), 10)
		answer := make(chan error, 1)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return wsroom.ErrClosed
		}
		b.waiters[token] = answer
		b.mu.Unlock()

		err := b.ps.Ping(ctx, token)
		if err == nil {
			select {
			case err = <-answer:
				if errors.Is(err, errConnectionLost) {
					continue
				}
				return err
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		b.mu.Lock()
		delete(b.waiters, token)
		b.mu.Unlock()
		return err
	}
}

// release removes s from its channel and UNSUBSCRIBEs the channel if s was
// the last subscription to it.
func (b *Broker) release(s *subscription) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	subs := slices.DeleteFunc(b.channels[s.channel], func(o *subscription) bool { return o == s })
	last := len(subs) == 0
	if last {
		delete(b.channels, s.channel)
	} else {
		b.channels[s.channel] = subs
	}
	closed := b.closed
	b.mu.Unlock()
	if !last || closed {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, unsubscribeTimeout)
	defer cancel()
	// go-redis forgets the channel even when the command fails, and a failed
	// write makes it replace the connection, which drops the subscription at
	// Redis too: nothing is left to clean up, so the error is not the
	// caller's problem.
	if err := b.ps.Unsubscribe(ctx, s.channel); err != nil {
		b.log.Debug("redisbroker: unsubscribe failed; the connection is replaced", "channel", s.channel, "err", err)
	}
}

// publishCmd is a PUBLISH that go-redis never retries: a retry after a lost
// reply could deliver the payload twice, and delivery is at most once.
type publishCmd struct{ *redis.IntCmd }

func (publishCmd) NoRetry() bool { return true }

// Publish implements [wsroom.Broker]. It sends PUBLISH and returns once
// Redis has answered, so the manager's one-at-a-time calls for a room reach
// Redis, and every subscriber, in call order. A failed PUBLISH is not
// retried (a retry could deliver twice); while Redis is unreachable Publish
// fails after one connection attempt, bounded by ctx and the client's dial
// timeout.
func (b *Broker) Publish(ctx context.Context, room string, payload []byte) error {
	if b.isClosed() {
		b.stats.publishErrors.Add(1)
		return fmt.Errorf("redisbroker: publish to room %q: %w", room, wsroom.ErrClosed)
	}
	cmd := publishCmd{redis.NewIntCmd(ctx, "publish", channelName(b.prefix, room), payload)}
	if err := b.client.Process(ctx, cmd); err != nil {
		b.stats.publishErrors.Add(1)
		return fmt.Errorf("redisbroker: publish to room %q: %w", room, err)
	}
	b.stats.published.Add(1)
	return nil
}

// Close stops the broker: it closes the Pub/Sub connection, ends every
// subscription's deliveries and waits for the broker's goroutines, including
// a deliver call in progress. Later calls to Publish and Subscribe fail with
// an error matching [wsroom.ErrClosed]. Close does not close the client
// given to [New]. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for token, answer := range b.waiters {
		answer <- wsroom.ErrClosed
		delete(b.waiters, token)
	}
	var open []*subscription
	for _, subs := range b.channels {
		open = append(open, subs...)
	}
	b.mu.Unlock()

	b.cancel()
	err := b.ps.Close()
	for _, s := range open {
		s.stop()
	}
	b.wg.Wait()
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisbroker: close: %w", err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// read is the one goroutine that reads the Pub/Sub connection. It hands
// each message to its subscriptions' queues and never waits for a delivery.
// When the connection fails, go-redis dials a new one on the next Receive
// and SUBSCRIBEs it to every channel of the broker before reading; read
// retries with backoff until that works.
func (b *Broker) read() {
	defer b.wg.Done()
	backoff := minBackoff
	down := false
	for {
		msg, err := b.ps.Receive(b.ctx)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !down {
				down = true
				b.log.Warn("redisbroker: pub/sub connection lost", "err", err)
			}
			b.failWaiters()
			if !sleep(b.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		if down {
			down = false
			b.stats.reconnects.Add(1)
			b.log.Info("redisbroker: pub/sub connection restored")
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.stats.received.Add(1)
			b.dispatch(m.Channel, []byte(m.Payload))
		case *redis.Pong:
			b.answer(m.Payload)
		}
	}
}

// dispatch queues payload to every open subscription of channel.
func (b *Broker) dispatch(channel string, payload []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.channels[channel] {
		s.push(payload)
	}
}

// answer completes the confirmation whose PING carried token.
func (b *Broker) answer(token string) {
	b.mu.Lock()
	answer := b.waiters[token]
	delete(b.waiters, token)
	b.mu.Unlock()
	if answer != nil {
		answer <- nil
	}
}

// failWaiters tells every confirmation in flight that its PING may be lost
// with the connection.
func (b *Broker) failWaiters() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for token, answer := range b.waiters {
		answer <- errConnectionLost
		delete(b.waiters, token)
	}
}

// unreachable reports whether err means Redis could not be reached or the
// connection broke, rather than a refusal such as a failed AUTH.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, errConnectionLost)
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
