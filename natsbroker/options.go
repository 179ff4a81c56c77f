package natsbroker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
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
// client options that fall short (Warn, from [New]; see [ClientOptions]),
// the NATS connection's absence when New is called or its loss (Warn), its
// recovery (Info) and its closing (Warn), a server without headers (Warn,
// once), and at Debug, subscriptions left for nats.go to send when it
// reconnects. The broker sets no handler on the connection: it follows the
// connection's status with nats.go's StatusChanged. Default: silent.
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

// The client options of [ClientOptions].
const (
	clientPingInterval   = time.Second
	clientMaxPingsOut    = 2
	clientFlusherTimeout = 2 * time.Second
	clientReconnectWait  = 250 * time.Millisecond
)

// deadServerWithin is how soon a connection's options must let it find a
// server that stopped answering; [New] warns of options that do not.
const deadServerWithin = 5 * time.Second

// ClientOptions returns the nats.go options a broker's connection needs,
// to be passed to nats.Connect before the caller's own (a later option
// overrides an earlier one):
//
//   - nats.MaxReconnects(-1): reconnect forever. nats.go's default gives up
//     after 60 attempts per server and closes the connection, after which
//     every publish fails until the process restarts.
//   - nats.PingInterval(time.Second) and nats.MaxPingsOutstanding(2): a
//     connection whose server stops answering (a paused process, a dead
//     host, a network that drops packets without resetting the connection)
//     is declared stale when a ping falls due while two are unanswered, 2
//     to 3 s after the server stopped answering, and nats.go reconnects, to
//     another server of the list or cluster if there is one. With nats.go's
//     defaults (2 min, 2), an idle connection takes 4 to 6 minutes.
//   - nats.FlusherTimeout(2 * time.Second): a write to a server that
//     stopped answering fails after 2 s instead of nats.go's default minute.
//     Once the socket's buffers are full, nats.go holds the connection's
//     lock while it writes, so Publish, and the ping that would find the
//     dead server, wait for that write.
//   - nats.ReconnectWait(250 * time.Millisecond): the wait before trying
//     the server list again once every server in it has failed, instead of
//     2 s. It bounds how long after a lone server's restart the connection
//     comes back, with nats.go's jitter (up to 100 ms, 1 s with TLS).
//
// [New], with [WithLogger], warns when reconnection is off or limited, when
// pings are off or would find a dead server only after more than 5 s
// (PingInterval × (MaxPingsOutstanding + 1)), and when writes have no
// timeout or one over 5 s.
func ClientOptions() []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.PingInterval(clientPingInterval),
		nats.MaxPingsOutstanding(clientMaxPingsOut),
		nats.FlusherTimeout(clientFlusherTimeout),
		nats.ReconnectWait(clientReconnectWait),
	}
}

// checkOptions returns what is wrong with a connection's options for a
// broker, one warning per problem.
func checkOptions(o *nats.Options) []string {
	var warnings []string
	switch {
	case !o.AllowReconnect:
		warnings = append(warnings, "reconnection is off (nats.NoReconnect): the first outage closes the connection for good; use natsbroker.ClientOptions")
	case o.MaxReconnect >= 0:
		warnings = append(warnings, fmt.Sprintf("nats.go gives up after %d reconnection attempts per server and closes the connection for good; use nats.MaxReconnects(-1)", o.MaxReconnect))
	}
	if o.PingInterval <= 0 {
		warnings = append(warnings, "pings are off (nats.PingInterval): a server that stops answering is never found; use nats.PingInterval(time.Second)")
	} else if d := o.PingInterval * time.Duration(o.MaxPingsOut+1); d > deadServerWithin {
		warnings = append(warnings, fmt.Sprintf("a server that stops answering is found only after up to %v (nats.PingInterval %v, nats.MaxPingsOutstanding %d); use nats.PingInterval(time.Second) and nats.MaxPingsOutstanding(2)", d, o.PingInterval, o.MaxPingsOut))
	}
	if o.FlusherTimeout <= 0 {
		warnings = append(warnings, "writes have no timeout (nats.FlusherTimeout): a write to a server that stops answering blocks Publish until the connection is found dead; use nats.FlusherTimeout(2 * time.Second)")
	} else if o.FlusherTimeout > deadServerWithin {
		warnings = append(warnings, fmt.Sprintf("a write to a server that stops answering blocks Publish, and the finding of the dead server, for up to %v (nats.FlusherTimeout); use nats.FlusherTimeout(2 * time.Second)", o.FlusherTimeout))
	}
	return warnings
}
