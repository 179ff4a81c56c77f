// Package demo holds what the three demos share: their common flags, the
// strings they answer with in each language, and serving with a graceful
// shutdown.
package demo

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/wsroom/wsroom"
)

// Config is the demos' common configuration, filled from flags.
type Config struct {
	Addr            string        // listen address
	Lang            string        // "zh" (the tutorial's strings) or "en"
	ReadLimit       int64         // largest message accepted, bytes
	QueueBytes      int           // per-connection outbound queue bound, bytes
	WriteTimeout    time.Duration // how long a peer may accept nothing before it is dropped
	PingInterval    time.Duration // server pings; 0 turns them off
	ShutdownTimeout time.Duration // bound on the graceful shutdown
	IdleTimeout     time.Duration // an idle keep-alive HTTP connection is closed after this
	Origins         []string      // extra allowed Origin patterns
	Hosts           []string      // extra allowed Host names (patterns)
	MaxConnections  int           // WebSocket connections at most; 0: no limit
	Verbose         bool          // log at Debug level
	Coalesce        bool          // merge queued messages into one, newline-separated
	Pprof           bool          // serve net/http/pprof under /debug/pprof/
}

// DefaultReadLimit is the demos' read limit: the largest message of the
// tutorial's transcripts is 2 MiB, which every demo must take. uvicorn's
// 16 MiB, which the tutorial's apps ran with, serves no purpose of theirs
// and lets each client make the server hold 16 MiB.
const DefaultReadLimit = 2 << 20

// DefaultConfig returns the defaults the flags show.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		Lang:            "zh",
		ReadLimit:       DefaultReadLimit,
		QueueBytes:      wsroom.DefaultQueueBytes,
		WriteTimeout:    wsroom.DefaultWriteTimeout,
		PingInterval:    wsroom.DefaultPingInterval,
		ShutdownTimeout: 10 * time.Second,
		IdleTimeout:     30 * time.Second,
		MaxConnections:  20000,
	}
}

// Register defines the common flags on fs, with c's values as defaults.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen `address`")
	fs.StringVar(&c.Lang, "lang", c.Lang, "reply language: zh (the tutorial's strings) or en")
	fs.Int64Var(&c.ReadLimit, "read-limit", c.ReadLimit, "largest message a client may send, in `bytes` (a larger one closes it with 1009)")
	fs.IntVar(&c.QueueBytes, "queue-bytes", c.QueueBytes, "outbound queue bound per connection, in `bytes`; a client that overflows it is evicted with 1013")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "drop a client that accepts no data for this `long`")
	fs.DurationVar(&c.PingInterval, "ping", c.PingInterval, "ping `interval` (0 turns pings off); a client that does not answer within the same time is dropped")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "bound on the graceful shutdown after SIGINT or SIGTERM")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close an idle keep-alive HTTP connection after this `long`")
	fs.Func("origin", "also accept pages from this Origin `pattern`, e.g. example.com or *.example.com (repeatable; same-origin pages and clients without an Origin header are always accepted)", func(p string) error {
		if p == "" {
			return fmt.Errorf("empty pattern")
		}
		c.Origins = append(c.Origins, p)
		return nil
	})
	fs.Func("host", "also accept requests whose Host header names this `host` (a name or a path.Match pattern, repeatable; the listen address, localhost, 127.0.0.1 and ::1 are always accepted)", func(h string) error {
		if h == "" {
			return fmt.Errorf("empty host")
		}
		c.Hosts = append(c.Hosts, h)
		return nil
	})
	fs.IntVar(&c.MaxConnections, "max-conns", c.MaxConnections, "refuse WebSocket handshakes with HTTP 503 past this many open connections (0: no limit)")
	fs.BoolVar(&c.Verbose, "v", c.Verbose, "log at debug level, including every connect and disconnect")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve profiles under /debug/pprof/ (for benchmarks; never on a public address)")
	fs.BoolVar(&c.Coalesce, "coalesce", c.Coalesce, "merge messages queued together into one WebSocket message, joined by newlines (only for clients that split them again; the tutorial's pages do not)")
}

// Strings returns the string table of c.Lang.
func (c *Config) Strings() (Strings, error) {
	s, ok := languages[c.Lang]
	if !ok {
		return Strings{}, fmt.Errorf("unknown -lang %q: want zh or en", c.Lang)
	}
	return s, nil
}

// AllowedHosts returns the Host names the demo answers: the listen
// address's host (unless it listens on every interface), localhost,
// 127.0.0.1, ::1 and the -host names. A page served under another name,
// such as one an attacker's DNS points at this server, is refused.
func (c *Config) AllowedHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(c.Addr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	return append(hosts, c.Hosts...)
}

// Options returns the manager options c implies, logging to log.
func (c *Config) Options(log *slog.Logger) []wsroom.Option {
	opts := []wsroom.Option{
		wsroom.WithLogger(log),
		wsroom.WithReadLimit(c.ReadLimit),
		wsroom.WithQueueLimit(wsroom.DefaultQueueMessages, c.QueueBytes),
		wsroom.WithWriteTimeout(c.WriteTimeout),
		wsroom.WithPing(c.PingInterval, max(c.PingInterval, time.Second)),
		wsroom.WithAllowedHosts(c.AllowedHosts()...),
		wsroom.WithMaxConnections(c.MaxConnections),
	}
	if len(c.Origins) > 0 {
		opts = append(opts, wsroom.WithOriginPatterns(c.Origins...))
	}
	if c.Coalesce {
		opts = append(opts, wsroom.WithCoalescing("\n"))
	}
	return opts
}

// Logger returns a text logger writing to w at the level c asks for.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if c.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
