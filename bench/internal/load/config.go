package load

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config describes one load run. Zero fields take the defaults noted on them.
type Config struct {
	// URL is the server's base URL ("ws://127.0.0.1:8080"); client i dials
	// URL+"/ws/c{i}". A URL containing "{id}" is used as a template instead.
	// Several comma-separated URLs (servers sharing rooms through a broker)
	// take the clients in turn: client i dials URL number i mod count.
	URL string
	// Mode is ModeChat (the chat protocol, the default) or ModeEcho (one
	// big message per client to an echo endpoint, replies read slowly).
	Mode string
	// Client is the WebSocket client library: ClientWsroom (the default)
	// or ClientGorilla.
	Client string
	// Clients is the number of connections, ids c0..c{Clients-1}. Senders
	// are the first Senders ids; the silent clients follow them. Default:
	// 10, or 20 in ModeEcho.
	Clients int
	// ConnectConcurrency bounds the dials in flight. Default: 64.
	ConnectConcurrency int
	// ConnectTimeout bounds one dial and handshake. Default: 10s.
	ConnectTimeout time.Duration
	// SourceIPs spreads connections over the source addresses
	// 127.0.0.1..127.0.0.{SourceIPs}, each of which has its own ephemeral
	// port range. Default: 0, the kernel picks the source address.
	SourceIPs int
	// JoinTimeout bounds the wait for every client to see the last join.
	// Default: 30s.
	JoinTimeout time.Duration

	// Senders is the number of clients that send; each sends Messages.
	Senders  int
	Messages int
	// Rate is messages per second per sender. Default: 0, unthrottled with
	// at most Window messages in flight per sender (a sender's own broadcast
	// copy coming back acknowledges a message).
	Rate   float64
	Window int // Default: 16.
	// AckTimeout is how long an unthrottled sender waits for an ack before
	// it counts the message as unacknowledged and frees its window slot.
	// Default: 2s.
	AckTimeout time.Duration
	// Size pads each message to at least this many bytes. Default: 0, or
	// 16 MiB in ModeEcho.
	Size int
	// Silent is the number of clients that never read after connecting.
	// Their sockets have a small receive buffer, so the server feels them
	// soon. From the first send on, their TCP state is polled every 20 ms
	// to see when the server cuts them (Result.SilentCutAfter).
	Silent int
	// SilentWait keeps the run going after the deliveries drained until
	// every silent client was cut or this long passed. Default: 0, the
	// run ends with the deliveries.
	SilentWait time.Duration
	// ReadRate (ModeEcho) bounds each client's reading, in bytes per
	// second. Default: 32 KiB/s.
	ReadRate float64
	// ReceiveBuffer (ModeEcho) is each client's SO_RCVBUF, set before it
	// connects. Default: 16 KiB.
	ReceiveBuffer int
	// DrainTimeout ends the wait for outstanding deliveries after this long
	// without progress, and ends the run as stalled when nothing is
	// delivered for this long while senders send. Default: 5s.
	DrainTimeout time.Duration
	// Timeout bounds the whole run. Default: 60s.
	Timeout time.Duration

	// ServerPID, when set, makes the run sample that process's RSS and CPU
	// time from /proc.
	ServerPID int
	// GoroutinesURL, when set, is fetched after the measurement; a pprof
	// goroutine page (?debug=1), {"goroutines": N} or a bare number is
	// understood.
	GoroutinesURL string
	// GCURL, when set, is fetched four times during IdleWait before the
	// last RSS sample (a net/http/pprof heap page with ?gc=1 makes a Go
	// server collect), so an idle server's RSS is measured without the
	// garbage a join storm left, as the runtime's own periodic collections
	// (one every two minutes) would after a few minutes.
	GCURL    string
	IdleWait time.Duration
}

// The modes of a run (Config.Mode).
const (
	ModeChat = "chat"
	ModeEcho = "echo"
)

func (c Config) withDefaults() Config {
	setDefault(&c.Mode, ModeChat)
	setDefault(&c.Client, ClientWsroom)
	if c.Mode == ModeEcho {
		setDefault(&c.Clients, 20)
		setDefault(&c.Size, 16<<20)
	}
	setDefault(&c.Clients, 10)
	setDefault(&c.ReadRate, 32<<10)
	setDefault(&c.ReceiveBuffer, 128<<10)
	setDefault(&c.ConnectConcurrency, 64)
	setDefault(&c.ConnectTimeout, 10*time.Second)
	setDefault(&c.JoinTimeout, 30*time.Second)
	setDefault(&c.Window, 16)
	setDefault(&c.AckTimeout, 2*time.Second)
	setDefault(&c.DrainTimeout, 5*time.Second)
	setDefault(&c.Timeout, 60*time.Second)
	return c
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}

// maxBitmapBytes bounds the per-receiver duplicate-detection bitmaps.
const maxBitmapBytes = 1 << 30

func (c Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Mode == ModeChat || c.Mode == ModeEcho, "mode %q: want %s or %s", c.Mode, ModeChat, ModeEcho)
	check(c.Client == ClientWsroom || c.Client == ClientGorilla, "client %q: want %s or %s", c.Client, ClientWsroom, ClientGorilla)
	check(c.SilentWait >= 0, "silent-wait must not be negative")
	check(c.ReadRate > 0, "read-rate must be positive")
	check(c.ReceiveBuffer > 0, "rcvbuf must be positive")
	check(c.Mode != ModeEcho || c.Size > 0 && c.Size <= maxEchoSize, "echo: size must be in [1, %d]", maxEchoSize)
	for _, u := range strings.Split(c.URL, ",") {
		check(strings.HasPrefix(u, "ws://"), "url %q must start with ws://", u)
	}
	check(c.Clients > 0, "clients must be positive")
	check(c.Senders >= 0 && c.Senders <= c.Clients, "senders must be in [0, clients]")
	check(c.Messages >= 0, "messages must not be negative")
	check(c.Silent >= 0, "silent must not be negative")
	check(c.Silent == 0 || c.Senders+c.Silent < c.Clients, "senders+silent must leave the last client reading")
	check(c.SourceIPs >= 0 && c.SourceIPs <= 254, "source-ips must be in [0, 254]")
	check(c.Rate >= 0, "rate must not be negative")
	check(c.Window > 0, "window must be positive")
	check(c.Size >= 0, "size must not be negative")
	check(c.ConnectConcurrency > 0, "connect concurrency must be positive")
	bitmapBytes := int64(c.Clients) * ((int64(c.Senders)*int64(c.Messages) + 63) / 64 * 8)
	check(bitmapBytes <= maxBitmapBytes, "clients*senders*messages/8 = %d bytes of loss bitmaps, over %d", bitmapBytes, maxBitmapBytes)
	if len(errs) > 0 {
		return fmt.Errorf("load: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// urlCount is how many comma-separated URLs the clients take in turn.
func (c Config) urlCount() int { return strings.Count(c.URL, ",") + 1 }

// clientURL returns the URL client i, called id, dials: URL/ws/{id} in
// ModeChat, URL/ws in ModeEcho, unless the URL is a template with {id}.
func (c Config) clientURL(i int, id string) string {
	urls := strings.Split(c.URL, ",")
	u := urls[i%len(urls)]
	if strings.Contains(u, "{id}") {
		return strings.ReplaceAll(u, "{id}", id)
	}
	if c.Mode == ModeEcho {
		return strings.TrimSuffix(u, "/") + "/ws"
	}
	return strings.TrimSuffix(u, "/") + "/ws/" + id
}
