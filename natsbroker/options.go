package natsbroker

import (
	"fmt"

	"github.com/wsroom/wsroom"
)

// An Option configures [New].
type Option func(*config) error

type config struct {
	prefix       string
	pendingMsgs  int
	pendingBytes int
}

func defaults() config {
	return config{
		prefix:       "wsroom",
		pendingMsgs:  65536,
		pendingBytes: 64 << 20,
	}
}

// WithPrefix sets the subject prefix: a room is published on prefix + "." +
// the encoded room name. Brokers that should share rooms need the same
// prefix; different prefixes keep applications on one NATS system apart. The
// prefix is one or more "."-separated tokens without wildcards ("*", ">")
// or white space. Default: "wsroom".
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if err := validPrefix(prefix); err != nil {
			return err
		}
		c.prefix = prefix
		return nil
	}
}

// WithPendingLimits bounds the messages nats.go holds for one room while
// the manager delivers earlier ones. Past either bound, nats.go drops new
// messages for that room and counts them in [Stats].Dropped. The manager
// only queues what it receives, so the bounds are reached only when the
// process cannot keep up at all. Default: 65536 messages and 64 MiB.
func WithPendingLimits(messages, bytes int) Option {
	return func(c *config) error {
		if messages <= 0 || bytes <= 0 {
			return invalid(fmt.Sprintf("pending limits must be positive, got %d messages and %d bytes", messages, bytes))
		}
		c.pendingMsgs, c.pendingBytes = messages, bytes
		return nil
	}
}

func invalid(why string) error {
	return fmt.Errorf("natsbroker: %w: %s", wsroom.ErrInvalidOption, why)
}
