package redisbroker

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wsroom/wsroom"
)

// DefaultPrefix is what every channel name starts with unless [WithPrefix]
// says otherwise.
const DefaultPrefix = "wsroom:"

// DefaultHealthCheck is the health check interval unless [WithHealthCheck]
// says otherwise: a Pub/Sub connection that stops answering is dropped
// within 2.25 s.
const DefaultHealthCheck = time.Second

// An Option configures a [Broker]. [New] applies the options in order and
// then checks the configuration they made, reporting an invalid one with an
// error matching [wsroom.ErrInvalidOption].
type Option func(*config)

type config struct {
	prefix string
	logger *slog.Logger
	health time.Duration
}

// silent is the logger of a broker given no [WithLogger].
var silent = slog.New(slog.DiscardHandler)

// newConfig applies opts to the defaults and checks the result.
func newConfig(opts []Option) (config, error) {
	c := config{prefix: DefaultPrefix, logger: silent, health: DefaultHealthCheck}
	for _, opt := range opts {
		if opt == nil {
			return c, invalid("nil option")
		}
		opt(&c)
	}
	switch {
	case c.prefix == "":
		return c, invalid("empty prefix")
	case strings.ContainsAny(c.prefix, `*?[]\`):
		return c, invalid("prefix %q contains a glob character", c.prefix)
	case c.logger == nil:
		return c, invalid("nil logger")
	case c.health < 0:
		return c, invalid("negative health check interval %v", c.health)
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("redisbroker: new: %w: "+format, append([]any{wsroom.ErrInvalidOption}, args...)...)
}

// WithPrefix sets the string every Redis channel name starts with, so that
// several applications can share one Redis without hearing each other.
// Every node of one application must use the same prefix. The prefix is used
// as given; it must not be empty or contain glob characters (*?[]\).
// Default: [DefaultPrefix], "wsroom:".
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// WithLogger sends the broker's log records to l, which must not be nil:
// a Pub/Sub connection's loss (Warn) and recovery (Info), channels moved to
// another cluster master (Info), dropped deliveries (Warn), and at Debug,
// subscriptions left pending while Redis is unreachable and unsubscribes
// that failed. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithHealthCheck sets how long a Pub/Sub connection may give no reply
// before the broker sends it a PING. One that gives no reply for twice
// that (the PING unanswered) is unresponsive: the broker closes it, logs
// the loss, and connects again with backoff, subscribing every room again;
// it is counted in [Stats].Unresponsive. The connection is checked every
// quarter interval, so a Redis that stops answering (a half-open
// connection, a stopped process) is found within 2.25 intervals. Busy
// connections are never pinged: any message counts as a reply. 0 turns the
// check off: a half-open connection is then noticed only by TCP keepalive,
// after about 45 s with go-redis's default dialer. Default:
// [DefaultHealthCheck], 1s.
func WithHealthCheck(interval time.Duration) Option {
	return func(c *config) { c.health = interval }
}
