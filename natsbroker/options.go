package natsbroker

import (
	"fmt"
	"log/slog"

	"github.com/wsroom/wsroom"
)

// DefaultPrefix is the subject prefix of every room unless [WithPrefix]
// says otherwise.
const DefaultPrefix = "wsroom"

// The default bounds of [WithPendingLimits].
const (
	defaultPendingMsgs  = 65536
	defaultPendingBytes = 64 << 20
)

// An Option configures a [Broker]. [New] applies the options in order and
// then checks the configuration they made, reporting an invalid one with an
// error matching [wsroom.ErrInvalidOption].
type Option func(*config)

type config struct {
	prefix       string
	logger       *slog.Logger
	pendingMsgs  int
	pendingBytes int
}

// silent is the logger of a broker given no [WithLogger].
var silent = slog.New(slog.DiscardHandler)

// newConfig applies opts to the defaults and checks the result.
func newConfig(opts []Option) (config, error) {
	c := config{
		prefix:       DefaultPrefix,
		logger:       silent,
		pendingMsgs:  defaultPendingMsgs,
		pendingBytes: defaultPendingBytes,
	}
	for _, opt := range opts {
		if opt == nil {
			return c, invalid("nil option")
		}
		opt(&c)
	}
	if c.logger == nil {
		return c, invalid("nil logger")
	}
	if c.pendingMsgs <= 0 || c.pendingBytes <= 0 {
		return c, invalid("pending limits must be positive, got %d messages and %d bytes", c.pendingMsgs, c.pendingBytes)
	}
	return c, validPrefix(c.prefix)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("natsbroker: new: %w: "+format, append([]any{wsroom.ErrInvalidOption}, args...)...)
}

// WithPrefix sets the subject prefix: a room is published on prefix + "." +
// the encoded room name. Brokers that should share rooms need the same
// prefix; different prefixes keep applications on one NATS system apart. The
// prefix is one or more "."-separated tokens without wildcards ("*", ">")
// or white space. Default: [DefaultPrefix], "wsroom".
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithLogger sends the broker's log records to l, which must not be nil:
// the NATS connection's absence when New is called or its loss (Warn), its
// recovery (Info) and its closing (Warn), and at Debug, subscriptions left
// for nats.go to send when it reconnects.
// With a logger the broker runs one goroutine, which watches the
// connection's status until [Broker.Close]; it sets no handler on the
// connection. Default: silent, and no goroutine.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithPendingLimits bounds the messages nats.go holds for one room while
// the manager delivers earlier ones. Past either bound, nats.go drops new
// messages for that room and counts them in [Stats].Dropped. The manager
// only queues what it receives, so the bounds are reached only when the
// process cannot keep up at all. Both must be positive. Default: 65536
// messages and 64 MiB.
func WithPendingLimits(messages, bytes int) Option {
	return func(c *config) { c.pendingMsgs, c.pendingBytes = messages, bytes }
}
