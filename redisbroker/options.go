package redisbroker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ErrInvalidOption reports an option that [New] refused. Match it with
// errors.Is.
var ErrInvalidOption = errors.New("redisbroker: invalid option")

// DefaultPrefix is what every channel name starts with unless [WithPrefix]
// says otherwise.
const DefaultPrefix = "wsroom:"

// An Option configures a [Broker]. Options are applied by [New], which
// reports the first invalid one.
type Option func(*config) error

type config struct {
	prefix string
	logger *slog.Logger
}

func defaults() config {
	return config{
		prefix: DefaultPrefix,
		logger: slog.New(slog.DiscardHandler),
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithPrefix sets the string every Redis channel name starts with, so that
// several applications can share one Redis without hearing each other.
// Every node of one application must use the same prefix. The prefix is used
// as given and must not contain glob characters (*?[]\). Default: "wsroom:".
func WithPrefix(p string) Option {
	return func(c *config) error {
		if p == "" {
			return invalid("empty prefix")
		}
		if strings.ContainsAny(p, `*?[]\`) {
			return invalid("prefix %q contains a glob character", p)
		}
		c.prefix = p
		return nil
	}
}

// WithLogger sends the broker's log records to l: connection loss and
// recovery at Warn and Info, dropped deliveries at Warn. Default: silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return invalid("nil logger")
		}
		c.logger = l
		return nil
	}
}
