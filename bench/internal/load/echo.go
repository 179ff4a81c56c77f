package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxEchoSize bounds Config.Size in ModeEcho.
const maxEchoSize = 256 << 20

// echoReplySlack is how much longer than the message its reply may be
// (the echo demo's prefix).
const echoReplySlack = 64 << 10

// echoRun is a ModeEcho run: every client sends one message of Size bytes
// to an echo endpoint and reads the reply slowly, through a small receive
// buffer at ReadRate, while the server's memory is sampled. It shows what
// a server holds for big messages that its clients take slowly.
type echoRun struct {
	cfg     Config
	payload []byte // what every client sends

	mu       sync.Mutex
	conns    []wsConn
	closed   bool
	stopping atomic.Bool

	connectFailures atomic.Int64
	sent            atomic.Int64
	fullReplies     atomic.Int64
	readBytes       atomic.Int64
	firstSendNanos  atomic.Int64
	lastReplyNanos  atomic.Int64
	ends            endCounter
	errs            errorLog
	cuts            *cutWatch // nil if the TCP probe cannot run
}

// runEcho runs cfg (in ModeEcho, with defaults applied) until every client
// got its reply or lost its connection, or ctx ends.
func runEcho(ctx context.Context, cfg Config) Result {
	r := &echoRun{cfg: cfg, payload: echoPayload(cfg.Size)}
	return r.execute(ctx)
}

// echoPayload returns the message every client sends: "e " and 'x' up to
// size bytes.
func echoPayload(size int) []byte {
	p := bytes.Repeat([]byte{'x'}, size)
	copy(p, "e ")
	return p
}

func (r *echoRun) execute(ctx context.Context) Result {
	cfg := r.cfg
	res := Result{
		Mode: cfg.Mode, Client: cfg.Client, URL: cfg.URL, Clients: cfg.Clients,
		Senders: cfg.Clients, Messages: 1, Size: cfg.Size,
		ReadRate: cfg.ReadRate, ReceiveBuffer: cfg.ReceiveBuffer,
	}
	start := time.Now()
	cpuBefore := selfCPUSeconds()
	var server *serverSampler
	if cfg.ServerPID > 0 {
		server = startServerSampler(cfg.ServerPID)
	}
	defer r.closeAll()
	cuts, err := newCutWatch(r.stopping.Load, &r.errs)
	if err != nil {
		r.errs.record(err)
	}
	r.cuts = cuts

	// Each client dials (bounded concurrency), then sends and reads on its
	// own; the run waits for all of them, or for the timeout.
	var clients sync.WaitGroup
	slots := make(chan struct{}, cfg.ConnectConcurrency)
	for i := range cfg.Clients {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			r.connectFailures.Add(int64(cfg.Clients - i))
			break
		}
		clients.Go(func() { r.client(ctx, i, slots) })
	}
	allDone := make(chan struct{})
	go func() {
		clients.Wait()
		close(allDone)
	}()
	select {
	case <-allDone:
	case <-ctx.Done():
		res.TimedOut = true
	}

	// The server's figures and the cuts are taken before the connections
	// are closed; closing them ends the clients still reading.
	if r.cuts != nil {
		firstSend := start
		if n := r.firstSendNanos.Load(); n != 0 {
			firstSend = time.Unix(0, n)
		}
		sum := r.cuts.finish(firstSend)
		res.ServerCut, res.ServerCutAfter, res.ServerCutBy = &sum.cut, &sum.longest, &sum.by
	}
	if server != nil {
		if err := server.finish(&res); err != nil {
			r.errs.record(err)
		}
	}
	r.closeAll()
	<-allDone

	r.mu.Lock()
	res.Connected = len(r.conns)
	r.mu.Unlock()
	res.ConnectFailures = int(r.connectFailures.Load())
	res.Sent = r.sent.Load()
	full := r.fullReplies.Load()
	read := r.readBytes.Load()
	res.FullReplies, res.ReadBytes = &full, &read
	res.Replies = full
	r.ends.fill(&res)
	if first, last := r.firstSendNanos.Load(), r.lastReplyNanos.Load(); first != 0 && last > first {
		res.SendDuration = time.Duration(last - first).Seconds()
	}
	res.ToolCPU = selfCPUSeconds() - cpuBefore
	res.Elapsed = time.Since(start).Seconds()
	res.ErrorCount, res.Errors = r.errs.snapshot()
	return res
}

// client dials client i, releases its dial slot, sends the message and
// reads until the whole reply arrived or the connection ended.
func (r *echoRun) client(ctx context.Context, i int, slot <-chan struct{}) {
	cfg := r.cfg
	id := clientID(i)
	dialer := dialerFor(cfg, i, false)
	dialCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	var tcp net.Conn
	conn, err := dialWS(dialCtx, cfg.Client, cfg.clientURL(i, id), func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tcp = nc
		return newThrottledConn(nc, cfg.ReadRate, &r.readBytes), nil
	}, cfg.Size+echoReplySlack)
	cancel()
	<-slot
	if err != nil {
		r.connectFailures.Add(1)
		r.errs.record(fmt.Errorf("connect %s: %w", id, err))
		return
	}
	r.mu.Lock()
	closed := r.closed
	if !closed {
		r.conns = append(r.conns, conn)
	}
	r.mu.Unlock()
	if closed {
		_ = conn.CloseNow()
		r.connectFailures.Add(1)
		return
	}
	ended := func(error) {}
	if r.cuts != nil {
		wc := r.cuts.add(id, tcp)
		ended = func(err error) { r.cuts.ended(wc, err) }
	}

	// The write runs beside the read: a server may close the connection
	// (message too big) before it took the whole message.
	var writer sync.WaitGroup
	writer.Go(func() {
		r.firstSendNanos.CompareAndSwap(0, time.Now().UnixNano())
		if err := conn.WriteText(r.payload); err != nil {
			if !r.stopping.Load() {
				r.errs.record(fmt.Errorf("send %s: %w", id, err))
			}
			return
		}
		r.sent.Add(1)
	})
	defer writer.Wait()
	for {
		text, msg, err := conn.ReadMessage()
		if err != nil {
			if !r.stopping.Load() {
				ended(err)
				r.ends.add(err)
				r.errs.record(fmt.Errorf("read %s: %w", id, err))
			}
			// Unblock a write the server no longer reads.
			_ = conn.CloseNow()
			return
		}
		if !text || len(msg) > len(r.payload)+echoReplySlack || !bytes.HasSuffix(msg, r.payload) {
			r.errs.record(fmt.Errorf("read %s: %d-byte reply that does not end with the message", id, len(msg)))
			continue
		}
		r.fullReplies.Add(1)
		r.lastReplyNanos.Store(time.Now().UnixNano())
		ended(nil)
		return
	}
}

// closeAll closes every connection and makes later ones close at once.
func (r *echoRun) closeAll() {
	r.stopping.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, c := range r.conns {
		_ = c.CloseNow()
	}
}

// throttledConn reads at most rate bytes per second from its connection
// (a token bucket holding 20 ms of reading) and counts what it read.
type throttledConn struct {
	net.Conn
	rate    float64
	burst   float64
	tokens  float64
	last    time.Time
	counter *atomic.Int64
}

func newThrottledConn(nc net.Conn, rate float64, counter *atomic.Int64) *throttledConn {
	burst := max(rate/50, 512)
	return &throttledConn{Conn: nc, rate: rate, burst: burst, tokens: burst, last: time.Now(), counter: counter}
}

// Read waits until it may read min(len(p), burst) bytes, then reads at
// most that many.
func (c *throttledConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Read(p)
	}
	want := min(float64(len(p)), c.burst)
	c.refill()
	if c.tokens < want {
		time.Sleep(time.Duration((want - c.tokens) / c.rate * float64(time.Second)))
		c.refill()
	}
	n, err := c.Conn.Read(p[:max(int(min(want, c.tokens)), 1)])
	c.tokens -= float64(n)
	c.counter.Add(int64(n))
	return n, err
}

func (c *throttledConn) refill() {
	now := time.Now()
	c.tokens = min(c.burst, c.tokens+now.Sub(c.last).Seconds()*c.rate)
	c.last = now
}
