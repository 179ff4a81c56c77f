package wsroom

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of every option. Each option's doc comment repeats its default.
const (
	DefaultQueueMessages = 16384
	DefaultQueueBytes    = 32 << 20
	DefaultReadLimit     = 32 << 10
	DefaultWriteTimeout  = 5 * time.Second
	DefaultPingInterval  = 20 * time.Second
	DefaultPingTimeout   = 20 * time.Second
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

// AuthFailureMode says how [ConnectionManager.Connect] answers a request its
// [Authenticator] refuses.
type AuthFailureMode int

const (
	// RejectHandshake answers HTTP 403 before the upgrade; no WebSocket is
	// accepted. It is the default, and what the tutorial's app does.
	RejectHandshake AuthFailureMode = iota
	// CloseAfterAccept accepts the upgrade and closes at once with 1008
	// (Policy Violation) and the reason "unauthorized", which a browser's
	// CloseEvent shows, while an HTTP 403 is invisible to page scripts.
	CloseAfterAccept
)

// An Option configures a [ConnectionManager]. Options are applied by [New],
// which validates them and reports the first invalid one.
type Option func(*config) error

type config struct {
	queueMessages  int
	queueBytes     int
	policy         SlowConsumerPolicy
	readLimit      int64
	writeTimeout   time.Duration
	pingInterval   time.Duration
	pingTimeout    time.Duration
	authenticator  Authenticator
	authFailure    AuthFailureMode
	originPatterns []string
	subprotocols   []string
	logger         *slog.Logger
	broker         Broker
	nodeID         string
	readBufferSize int
	coalesce       []byte // nil: every message is its own WebSocket message
}

// defaults returns the configuration every option starts from.
func defaults() config {
	return config{
		queueMessages:  DefaultQueueMessages,
		queueBytes:     DefaultQueueBytes,
		policy:         Evict,
		readLimit:      DefaultReadLimit,
		writeTimeout:   DefaultWriteTimeout,
		pingInterval:   DefaultPingInterval,
		pingTimeout:    DefaultPingTimeout,
		logger:         slog.New(slog.DiscardHandler),
		readBufferSize: 256,
	}
}

var errInvalidOption = errors.New("wsroom: invalid option")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvalidOption}, args...)...)
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

// WithWriteTimeout sets how long a connection may accept no bytes at all
// while data waits for it. A peer that makes no progress for this long is
// disconnected; its socket is closed without a handshake, since nothing more
// can be written to it. Default: 5s.
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
// waits for the pong. A peer that does not answer in time is disconnected and
// leaves its rooms. Browsers answer pings but never send them, so the server
// drives them. The pong is read by the connection's reader, so a
// connection must be read ([Conn.Read] in a loop, or
// [ConnectionManager.Serve]); one that nobody reads is disconnected at its
// first ping. An interval of 0 turns pings off. Default: every 20s, timeout
// 20s.
func WithPing(interval, timeout time.Duration) Option {
	return func(c *config) error {
		if interval < 0 || timeout <= 0 {
			return invalid("ping interval %v, timeout %v: interval must be >= 0 and timeout positive", interval, timeout)
		}
		c.pingInterval, c.pingTimeout = interval, timeout
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
			if p == "" {
				return invalid("empty origin pattern")
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
