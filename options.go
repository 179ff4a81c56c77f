package wsroom

import (
	"fmt"
	"log/slog"
	"path"
	"time"
)

// Defaults of every option. Each option's doc comment repeats its default.
const (
	DefaultQueueMessages     = 16384
	DefaultQueueBytes        = 32 << 20
	DefaultQueueBudget       = 256 << 20
	DefaultReadLimit         = 32 << 10
	DefaultWriteTimeout      = 5 * time.Second
	DefaultPingInterval      = 20 * time.Second
	DefaultPingTimeout       = 20 * time.Second
	DefaultCloseTimeout      = 5 * time.Second
	DefaultPublishQueue      = 16384
	DefaultPublishQueueBytes = 64 << 20
	DefaultPublishTimeout    = 5 * time.Second
)

// SlowConsumerPolicy says what happens when a message is sent to a connection
// whose outbound queue is full.
type SlowConsumerPolicy int

const (
	// Evict disconnects the connection with close code 1013 (Try Again
	// Later) and reason "slow consumer", dropping what it had queued. It is
	// the default: a reader that stopped never costs the others anything.
	Evict SlowConsumerPolicy = iota
	// DropNewest keeps the queue and drops the message being sent.
	DropNewest
	// DropOldest drops queued messages, oldest first, until the new one fits.
	DropOldest
)

// String returns the policy's name: "evict", "drop-newest" or
// "drop-oldest".
func (p SlowConsumerPolicy) String() string {
	switch p {
	case Evict:
		return "evict"
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("SlowConsumerPolicy(%d)", int(p))
}

// An Option configures a [ConnectionManager]. Options are applied by [New],
// which validates them and reports the first invalid one.
type Option func(*config) error

type config struct {
	queueMessages  int
	queueBytes     int
	queueBudget    int64
	policy         SlowConsumerPolicy
	readLimit      int64
	writeTimeout   time.Duration
	pingInterval   time.Duration
	pingTimeout    time.Duration
	closeTimeout   time.Duration
	maxConnections int
	allowedHosts   []string // nil: any Host
	authenticator  Authenticator
	authFailure    AuthFailureMode
	originPatterns []string
	subprotocols   []string
	logger         *slog.Logger
	broker         Broker
	observer       Observer
	events         RoomEvents
	publishQueue   int
	publishBytes   int64
	publishTimeout time.Duration
	nodeID         string
	coalesce       []byte // nil: every message is its own WebSocket message
}

// defaults returns the configuration every option starts from.
func defaults() config {
	return config{
		queueMessages:  DefaultQueueMessages,
		queueBytes:     DefaultQueueBytes,
		queueBudget:    DefaultQueueBudget,
		policy:         Evict,
		readLimit:      DefaultReadLimit,
		writeTimeout:   DefaultWriteTimeout,
		pingInterval:   DefaultPingInterval,
		pingTimeout:    DefaultPingTimeout,
		closeTimeout:   DefaultCloseTimeout,
		publishQueue:   DefaultPublishQueue,
		publishBytes:   DefaultPublishQueueBytes,
		publishTimeout: DefaultPublishTimeout,
		logger:         slog.New(slog.DiscardHandler),
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithQueueLimit bounds each connection's outbound queue to messages
// messages and bytes bytes of payload, whichever is reached first. A message
// sent to a full queue triggers the [SlowConsumerPolicy]. A single message
// larger than bytes is still accepted by an empty queue, so a read limit above
// the byte bound never evicts everyone.
//
// The bound is a memory guard for readers that stopped, not a rate limit: the
// defaults hold a burst of 5,000 messages of 2 KB to 50 readers while each
// reader is seconds behind. Broadcast payloads are shared by every queue, so
// bytes counts them once per queue, which overstates their real cost.
// Default: 16384 messages, 32 MiB.
func WithQueueLimit(messages, bytes int) Option {
	return func(c *config) error {
		if messages < 1 || bytes < 1 {
			return invalid("queue limit %d messages, %d bytes: both must be positive", messages, bytes)
		}
		c.queueMessages, c.queueBytes = messages, bytes
		return nil
	}
}

// WithQueueBudget bounds the payload bytes queued to all of the manager's
// connections together. A payload counts once while any queue holds it,
// however many share it, so a broadcast counts its bytes once. When a new
// payload takes the total over the budget, the send that did it applies the
// [SlowConsumerPolicy] to the connections holding the most bytes, biggest
// first, before it returns: [Evict] evicts them and [DropOldest] drops
// their oldest messages until the total is under seven eighths of the
// budget; [DropNewest] drops their new messages until their queue has
// drained, until the connections still taking messages hold at most an
// eighth of the budget (the total may then exceed the budget by that
// much while the capped queues drain). A connection that is closing no
// longer counts against the budget, though what its writer already took
// stays in [Stats].QueuedBytes until it ends. Counted in
// [Stats].OverBudget. Default: 256 MiB.
func WithQueueBudget(bytes int64) Option {
	return func(c *config) error {
		if bytes < 1 {
			return invalid("queue budget %d bytes: must be positive", bytes)
		}
		c.queueBudget = bytes
		return nil
	}
}

// WithSlowConsumerPolicy sets what happens when a connection's queue is full.
// Default: [Evict].
func WithSlowConsumerPolicy(p SlowConsumerPolicy) Option {
	return func(c *config) error {
		if p < Evict || p > DropOldest {
			return invalid("unknown slow-consumer policy %v", p)
		}
		c.policy = p
		return nil
	}
}

// WithReadLimit sets the largest message, in bytes, a connection accepts. A
// larger one closes that connection with 1009 (Message Too Big); others are
// unaffected. Default: 32 KiB.
func WithReadLimit(bytes int64) Option {
	return func(c *config) error {
		if bytes < 1 {
			return invalid("read limit %d: must be positive", bytes)
		}
		c.readLimit = bytes
		return nil
	}
}

// WithWriteTimeout sets how long a peer may acknowledge no byte at all
// while data waits for it. A peer that makes no progress for this long is
// dead: its socket is closed without a close frame, since nothing more can
// reach it, and it leaves its rooms. A peer that keeps acknowledging bytes,
// however slowly, is never cut by this timeout. Progress is what the peer
// acknowledged, as the kernel reports it on Linux (TCP_INFO, SIOCOUTQ),
// over TLS too; elsewhere it is the local socket taking bytes. The peer is
// checked every eighth of the timeout, at most every half second.
//
// A peer's kernel acknowledges nothing while its receive buffer is full,
// and Linux advertises room again only once a good part of it has been
// read (at least a segment: 64 KiB on loopback, about 1.5 KiB on a
// network). A client that reads a backlog slower than that per write
// timeout looks stalled: on loopback, one with a 128 KiB receive buffer
// reading 32 KiB/s was seen to go 6 s without acknowledging. Give such
// clients a longer timeout. Default: 5s.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("write timeout %v: must be positive", d)
		}
		c.writeTimeout = d
		return nil
	}
}

// WithPing sets how often the server pings each connection and how long it
// waits for the pong. Browsers answer pings but never send them, so the
// server drives them. A peer that sends no pong within timeout and made no
// progress meanwhile (no byte arrived from it, and it acknowledged none of
// the data waiting for it) is dead: its socket is closed and it leaves its
// rooms. A peer still reading through a backlog reads the ping late but is
// not cut. The pong is read by the connection's reader, so a connection
// must be read ([Conn.Read] in a loop, or [ConnectionManager.Start]); one
// that nobody reads is disconnected at its first ping. An interval of 0
// turns pings off (timeout is then ignored). Default: every 20s, timeout
// 20s.
func WithPing(interval, timeout time.Duration) Option {
	return func(c *config) error {
		if interval < 0 || interval > 0 && timeout <= 0 {
			return invalid("ping interval %v, timeout %v: interval must be >= 0, and timeout positive unless pings are off", interval, timeout)
		}
		c.pingInterval, c.pingTimeout = interval, timeout
		return nil
	}
}

// WithCloseTimeout bounds every close, from its start to the socket's
// close: writing what was queued (for [ConnectionManager.Disconnect] and
// [ConnectionManager.Shutdown]), the close frame, and waiting for the
// peer's. Whatever is left then, the socket is closed. Default: 5s.
func WithCloseTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("close timeout %v: must be positive", d)
		}
		c.closeTimeout = d
		return nil
	}
}

// WithMaxConnections caps the connections of the manager: past n, Connect
// and Start answer HTTP 503 before the upgrade, counted in
// [Stats].RefusedFull. A connection counts from that check until it is
// fully closed. Default: 0, no cap (each idle connection costs about
// 10 KiB).
func WithMaxConnections(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return invalid("max connections %d: must not be negative", n)
		}
		c.maxConnections = n
		return nil
	}
}

// WithAllowedHosts makes Connect and Start refuse, with HTTP 403, a request
// whose Host header, without its port, matches none of the patterns
// (path.Match syntax, matched case-insensitively: "localhost",
// "127.0.0.1", "::1", "*.example.com"). It defends against DNS rebinding:
// a page on a name the attacker controls that resolves to this server
// passes the Origin check, since its Origin and Host agree, but not this
// one. Counted in [Stats].RefusedHost. Default: any Host.
func WithAllowedHosts(patterns ...string) Option {
	return func(c *config) error {
		if len(patterns) == 0 {
			return invalid("no allowed hosts")
		}
		for _, p := range patterns {
			if _, err := path.Match(p, ""); p == "" || err != nil {
				return invalid("host pattern %q", p)
			}
		}
		c.allowedHosts = append([]string(nil), patterns...)
		return nil
	}
}

// WithAuthenticator makes [ConnectionManager.Connect] authenticate every
// request before the upgrade. Default: none, every request is accepted.
func WithAuthenticator(a Authenticator) Option {
	return func(c *config) error {
		if a == nil {
			return invalid("nil authenticator")
		}
		c.authenticator = a
		return nil
	}
}

// WithAuthFailure sets how a refused request is answered. Default:
// [RejectHandshake] (HTTP 403, no upgrade).
func WithAuthFailure(mode AuthFailureMode) Option {
	return func(c *config) error {
		if mode != RejectHandshake && mode != CloseAfterAccept {
			return invalid("unknown auth failure mode %d", mode)
		}
		c.authFailure = mode
		return nil
	}
}

// WithOriginPatterns allows cross-origin pages whose Origin host matches one
// of the patterns (path.Match syntax, matched case-insensitively; a pattern
// with "://" is matched against scheme://host). By default only same-origin
// pages and clients that send no Origin header (tools, not browsers) are
// accepted; a foreign Origin is refused with HTTP 403.
func WithOriginPatterns(patterns ...string) Option {
	return func(c *config) error {
		for _, p := range patterns {
			if _, err := path.Match(p, ""); p == "" || err != nil {
				return invalid("origin pattern %q", p)
			}
		}
		c.originPatterns = append([]string(nil), patterns...)
		return nil
	}
}

// WithSubprotocols lists the application subprotocols the server negotiates,
// in order of preference. Default: none.
func WithSubprotocols(protocols ...string) Option {
	return func(c *config) error {
		c.subprotocols = append([]string(nil), protocols...)
		return nil
	}
}

// WithLogger sends the manager's log records to l. Default: silent. A normal
// client disconnect is logged at Debug level, never as an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithBroker carries room broadcasts to the other processes that use the
// same broker. Default: none, rooms are local to the process.
func WithBroker(b Broker) Option {
	return func(c *config) error {
		if b == nil {
			return invalid("nil broker")
		}
		c.broker = b
		return nil
	}
}

// WithPublishQueue bounds what waits for the [Broker]: at most broadcasts
// broadcasts and bytes bytes of payload (a broadcast larger than bytes is
// taken when the queue is empty), besides the batch being published, and
// each Broker.Publish call to timeout. A broadcast that finds the queue
// full is delivered to its local members and fails with
// [ErrBrokerUnavailable], counted in [Stats].BrokerQueueFull, so a stalled
// broker costs at most bytes of memory however fast clients send; one
// Publish that takes longer than timeout fails (its batch counts in
// [Stats].BrokerPublishErrors) and the next batch goes. Default: 16384
// broadcasts, 64 MiB, 5s.
func WithPublishQueue(broadcasts int, bytes int64, timeout time.Duration) Option {
	return func(c *config) error {
		if broadcasts < 1 || bytes < 1 || timeout <= 0 {
			return invalid("publish queue of %d broadcasts, %d bytes, timeout %v: all must be positive", broadcasts, bytes, timeout)
		}
		c.publishQueue, c.publishBytes, c.publishTimeout = broadcasts, bytes, timeout
		return nil
	}
}

// An Observer is told of what counters cannot say, for metrics: each field
// is optional, called outside every lock of the manager's, and must be
// cheap and safe for concurrent use.
type Observer struct {
	// Published is called after each Broker.Publish with the number of
	// broadcasts in its batch, how long it took and its error, from the
	// manager's publishing goroutine.
	Published func(broadcasts int, took time.Duration, err error)
}

// WithObserver sets the manager's [Observer]. Default: none.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		c.observer = o
		return nil
	}
}

// WithNodeID names this manager in broker envelopes. Each process sharing a
// broker needs its own. Default: 16 random hex digits.
func WithNodeID(id string) Option {
	return func(c *config) error {
		if id == "" || len(id) > 255 {
			return invalid("node ID must be 1 to 255 bytes")
		}
		c.nodeID = id
		return nil
	}
}

// WithCoalescing lets a connection's writer merge the messages queued
// together into one WebSocket message, joined by separator, for protocols
// whose clients split them again (newline-delimited JSON, say). A merged
// message holds messages of one type and at most 64 KiB unless a single
// message is larger. Off by default: every message is its own WebSocket
// message, which is what most clients expect.
func WithCoalescing(separator string) Option {
	return func(c *config) error {
		if separator == "" {
			return invalid("empty coalescing separator")
		}
		c.coalesce = []byte(separator)
		return nil
	}
}
