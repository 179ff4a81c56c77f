package redisbroker

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/wsroom/wsroom"
)

// DefaultPrefix is what every channel name starts with unless [WithPrefix]
// says otherwise.
const DefaultPrefix = "wsroom:"

// An Option configures a [Broker]. [New] applies the options in order and
// then checks the configuration they made, reporting an invalid one with an
// error matching [wsroom.ErrInvalidOption].
type Option func(*config)

type config struct {
	prefix string
	logger *slog.Logger
}

// silent is the logger of a broker given no [WithLogger].
var silent = slog.New(slog.DiscardHandler)

// newConfig applies opts to the defaults and checks the result.
func newConfig(opts []Option) (config, error) {
	c := config{prefix: DefaultPrefix, logger: silent}
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
// the Pub/Sub connection's loss (Warn) and recovery (Info), dropped
// deliveries (Warn), and at Debug, subscriptions left pending while Redis is
// unreachable and UNSUBSCRIBEs that failed. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}
