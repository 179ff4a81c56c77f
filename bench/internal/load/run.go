// Package load drives a chat server with many clients and measures delivery:
// loss, duplicates, order, latency and throughput. cmd/wsroom-load is its
// command-line face.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsroom/wsroom/bench/internal/wsclient"
)

// Run connects the clients, waits for the join storm to settle, lets the
// senders send, waits for the deliveries, and reports. It returns an error
// only for an invalid Config: whatever goes wrong on the wire is counted in
// the Result. Run returns by cfg.Timeout at the latest, with
// Result.TimedOut set if it had to stop early.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if cfg.Mode == ModeEcho {
		return runEcho(ctx, cfg), nil
	}
	r := &run{
		cfg:          cfg,
		lastID:       []byte(clientID(cfg.Clients - 1)),
		clients:      make([]*client, cfg.Clients),
		latencyByURL: make([]histogram, cfg.urlCount()),
	}
	return r.execute(ctx), nil
}

// silentReceiveBuffer is the SO_RCVBUF of silent clients; the kernel
// doubles it and enforces its own minimum.
const silentReceiveBuffer = 4096

// maxRecordedErrors bounds Result.Errors; ErrorCount has the full count.
const maxRecordedErrors = 5

type run struct {
	cfg    Config
	lastID []byte

	mu      sync.Mutex
	clients []*client // by index; nil until connected
	closed  bool      // set by closeAll; later connections are closed at once

	readers  sync.WaitGroup
	stopping atomic.Bool // the run is closing connections itself

	connectFailures      atomic.Int64
	joins                atomic.Int64
	selfJoined           atomic.Int64 // readers that saw their own join
	exitedBeforeSelfJoin atomic.Int64 // readers that ended before that
	settled              atomic.Int64 // readers that saw the last client's join
	exitedUnsettled      atomic.Int64 // readers that ended before that
	sent                 atomic.Int64
	received             atomic.Int64
	duplicates           atomic.Int64
	outOfOrder           atomic.Int64
	replies              atomic.Int64
	replyBeforeCopy      atomic.Int64
	ackTimeouts          atomic.Int64
	ends                 endCounter
	lastDeliveryNanos    atomic.Int64
	latency              histogram
	latencyByURL         []histogram // by the index of the URL the reader dialled

	errs errorLog
}

// client is one connection. The fields below conn are owned by its reader
// goroutine, except acks and done, which connect it to its sender.
type client struct {
	idx    int
	id     string
	conn   wsConn
	nc     net.Conn // under conn, for the TCP probe of silent clients
	sender bool
	silent bool

	selfJoined bool
	settled    bool
	seen       []uint64 // bit sender*Messages+seq is set once delivered
	maxSeq     []int32  // per sender, the highest seq delivered, -1 before any
	ownCopy    int32    // highest seq of this sender's own messages delivered

	acks chan struct{} // one per own broadcast copy, for the send window
	done chan struct{} // closed when the reader ends
}

func clientID(i int) string { return "c" + strconv.Itoa(i) }

func (r *run) execute(ctx context.Context) Result {
	cfg := r.cfg
	res := Result{
		Mode: cfg.Mode, Client: cfg.Client, URL: cfg.URL, Clients: cfg.Clients, Senders: cfg.Senders, Messages: cfg.Messages,
		Rate: cfg.Rate, Window: cfg.Window, Size: cfg.Size, Silent: cfg.Silent,
	}
	start := time.Now()
	cpuBefore := selfCPUSeconds()
	var server *serverSampler
	if cfg.ServerPID > 0 {
		server = startServerSampler(cfg.ServerPID)
	}
	// A run that times out or stalls closes every connection, which
	// unblocks readers, writers and dials alike.
	timeoutCtx := ctx
	ctx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	stopOnTimeout := context.AfterFunc(ctx, r.closeAll)
	defer stopOnTimeout()

	joinCtx, cancelJoin := context.WithTimeout(ctx, cfg.JoinTimeout)
	connected, readers, dialing := r.connectAll(ctx, joinCtx)
	res.Connect = dialing.Seconds()
	res.Connected = connected
	res.ConnectFailures = int(r.connectFailures.Load())
	res.JoinSettled = poll(joinCtx, time.Millisecond, func() bool {
		return r.settled.Load()+r.exitedUnsettled.Load() >= int64(readers)
	})
	cancelJoin()
	res.JoinSettle = time.Since(start).Seconds()
	res.JoinDeliveries = r.joins.Load()

	if cfg.Senders > 0 && cfg.Messages > 0 && ctx.Err() == nil {
		readers := r.liveReaders()
		silent := r.watchSilent()
		firstSend := time.Now()
		var senders sync.WaitGroup
		for _, c := range r.clients[:cfg.Senders] {
			if c != nil {
				senders.Go(func() { r.send(ctx, c) })
			}
		}
		stopWatch := r.watchStall(ctx, stopRun)
		senders.Wait()
		stopWatch()
		res.Expected = r.sent.Load() * int64(readers)
		r.drain(ctx, res.Expected)
		if last := time.Unix(0, r.lastDeliveryNanos.Load()); last.After(firstSend) {
			res.SendDuration = last.Sub(firstSend).Seconds()
		}
		if silent != nil {
			silent.wait(ctx, cfg.SilentWait)
			sum := silent.finish(firstSend)
			res.SilentCut, res.SilentCutAfter, res.SilentCutBy = &sum.cut, &sum.allCutMs, &sum.by
		}
	}
	res.TimedOut = timeoutCtx.Err() != nil
	res.Stalled = errors.Is(context.Cause(ctx), errStalled)

	if cfg.GCURL != "" {
		// A collection frees the garbage; the runtime returns the freed
		// pages to the OS in the background over the next seconds, and
		// each later collection lets it shrink stacks and release more.
		for range 4 {
			if err := fetchOK(context.WithoutCancel(ctx), cfg.GCURL); err != nil {
				r.recordErr(fmt.Errorf("gc: %w", err))
				break
			}
			time.Sleep(cfg.IdleWait / 4)
		}
	}
	if server != nil {
		if err := server.finish(&res); err != nil {
			r.recordErr(err)
		}
	}
	if cfg.GoroutinesURL != "" {
		n, err := fetchGoroutines(context.WithoutCancel(ctx), cfg.GoroutinesURL)
		if err != nil {
			r.recordErr(fmt.Errorf("goroutine count: %w", err))
		} else {
			res.ServerGoroutines = &n
		}
	}
	r.closeAll()
	r.readers.Wait()

	res.Sent = r.sent.Load()
	res.Received = r.received.Load()
	res.Lost = max(res.Expected-res.Received, 0)
	res.Duplicate = r.duplicates.Load()
	res.OutOfOrder = r.outOfOrder.Load()
	res.Replies = r.replies.Load()
	res.ReplyBeforeCopy = r.replyBeforeCopy.Load()
	res.AckTimeouts = r.ackTimeouts.Load()
	r.ends.fill(&res)
	if res.SendDuration > 0 {
		res.DeliveriesPerSec = float64(res.Received) / res.SendDuration
	}
	res.LatencyP50 = r.latency.quantile(0.50) / 1e3
	res.LatencyP99 = r.latency.quantile(0.99) / 1e3
	res.LatencyMax = float64(r.latency.max.Load()) / 1e3
	if len(r.latencyByURL) > 1 {
		for i := range r.latencyByURL {
			h := &r.latencyByURL[i]
			res.LatencyP50ByURL = append(res.LatencyP50ByURL, h.quantile(0.50)/1e3)
			res.LatencyP99ByURL = append(res.LatencyP99ByURL, h.quantile(0.99)/1e3)
		}
	}
	res.ToolCPU = selfCPUSeconds() - cpuBefore
	res.Elapsed = time.Since(start).Seconds()
	res.ErrorCount, res.Errors = r.errs.snapshot()
	return res
}

// connectAll dials every client but the last with bounded concurrency,
// waits until each of them that reads saw its own join (so the server has
// registered it), then dials the last one, whose join is then the last the
// server broadcasts. It returns the number of connected clients, of those
// that read, and the time spent dialing.
func (r *run) connectAll(ctx, joinCtx context.Context) (connected, readers int, dialing time.Duration) {
	n := r.cfg.Clients
	start := time.Now()
	jobs := make(chan int)
	var workers sync.WaitGroup
	for range min(r.cfg.ConnectConcurrency, max(n-1, 1)) {
		workers.Go(func() {
			for i := range jobs {
				r.connect(ctx, i)
			}
		})
	}
feed:
	for i := range n - 1 {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	workers.Wait()
	dialing = time.Since(start)

	firstReaders := r.countReaders()
	poll(joinCtx, time.Millisecond, func() bool {
		return r.selfJoined.Load()+r.exitedBeforeSelfJoin.Load() >= int64(firstReaders)
	})
	if ctx.Err() == nil {
		lastStart := time.Now()
		r.connect(ctx, n-1)
		dialing += time.Since(lastStart)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		if c == nil {
			continue
		}
		connected++
		if !c.silent {
			readers++
		}
	}
	return connected, readers, dialing
}

// countReaders counts connected clients that read.
func (r *run) countReaders() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.clients {
		if c != nil && !c.silent {
			n++
		}
	}
	return n
}

func (r *run) connect(ctx context.Context, i int) {
	cfg := r.cfg
	c := &client{
		idx:    i,
		id:     clientID(i),
		sender: i < cfg.Senders,
		silent: i >= cfg.Senders && i < cfg.Senders+cfg.Silent,
	}
	dialCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	dialer := dialerFor(cfg, i, c.silent)
	conn, err := dialWS(dialCtx, cfg.Client, cfg.clientURL(i, c.id), func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialer.DialContext(ctx, network, addr)
		c.nc = nc
		return nc, err
	}, max(wsclient.DefaultMaxMessageSize, 2*cfg.Size+4096))
	cancel()
	if err != nil {
		r.connectFailures.Add(1)
		r.recordErr(fmt.Errorf("connect %s: %w", c.id, err))
		return
	}
	c.conn = conn
	if !c.silent {
		c.seen = make([]uint64, (cfg.Senders*cfg.Messages+63)/64)
		c.maxSeq = make([]int32, cfg.Senders)
		for s := range c.maxSeq {
			c.maxSeq[s] = -1
		}
		c.ownCopy = -1
		c.done = make(chan struct{})
		if c.sender {
			c.acks = make(chan struct{}, cfg.Window)
		}
	}

	r.mu.Lock()
	closed := r.closed
	if !closed {
		r.clients[i] = c
	}
	r.mu.Unlock()
	if closed {
		_ = conn.CloseNow()
		r.connectFailures.Add(1)
		return
	}
	if !c.silent {
		r.readers.Add(1)
		go r.read(c)
	}
}

// dialerFor returns the dialer of client i: from its source address, with
// a small receive buffer when silent, or ReceiveBuffer in ModeEcho.
func dialerFor(cfg Config, i int, silent bool) *net.Dialer {
	d := &net.Dialer{}
	if n := cfg.SourceIPs; n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%n))}
	}
	rcvbuf := 0
	switch {
	case silent:
		rcvbuf = silentReceiveBuffer
	case cfg.Mode == ModeEcho:
		rcvbuf = cfg.ReceiveBuffer
	}
	if rcvbuf > 0 {
		// Set before connecting, so that the window scale the handshake
		// agrees on fits the small buffer.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var sockErr error
			err := rc.Control(func(fd uintptr) {
				sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return sockErr
		}
	}
	return d
}

// errStalled ends a run whose deliveries stopped while senders still send.
var errStalled = errors.New("load: no delivery for the drain timeout while sending")

// watchStall stops the run if nothing is delivered for the drain timeout
// while the senders run (a server stuck on one peer blocks them in write).
// The returned function ends the watch.
func (r *run) watchStall(ctx context.Context, stopRun context.CancelCauseFunc) (stop func()) {
	watchCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		last, lastProgress := int64(-1), time.Now()
		stalled := poll(watchCtx, 10*time.Millisecond, func() bool {
			if n := r.received.Load() + r.replies.Load(); n != last {
				last, lastProgress = n, time.Now()
			}
			return time.Since(lastProgress) > r.cfg.DrainTimeout
		})
		if stalled && watchCtx.Err() == nil {
			stopRun(errStalled)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// drain waits until the expected deliveries and a reply per sent message
// arrived, or nothing arrived for the drain timeout.
func (r *run) drain(ctx context.Context, expected int64) {
	sent := r.sent.Load()
	last, lastProgress := int64(-1), time.Now()
	poll(ctx, 2*time.Millisecond, func() bool {
		received, replies := r.received.Load(), r.replies.Load()
		if received >= expected && replies >= sent {
			return true
		}
		if n := received + replies; n != last {
			last, lastProgress = n, time.Now()
		}
		return time.Since(lastProgress) > r.cfg.DrainTimeout
	})
}

// poll checks done every interval until it holds or ctx ends, and reports
// whether it held.
func poll(ctx context.Context, interval time.Duration, done func() bool) bool {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for !done() {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return done()
		}
	}
	return true
}

// watchSilent starts watching the connected silent clients for the
// server cutting them, or returns nil without silent clients or when the
// probe cannot run (an error is recorded).
func (r *run) watchSilent() *cutWatch {
	if r.cfg.Silent == 0 {
		return nil
	}
	w, err := newCutWatch(r.stopping.Load, &r.errs)
	if err != nil {
		r.recordErr(err)
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		if c != nil && c.silent {
			w.add(c.id, c.nc)
		}
	}
	return w
}

// liveReaders counts reading clients whose connection is still up.
func (r *run) liveReaders() int {
	n := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		if c == nil || c.silent {
			continue
		}
		select {
		case <-c.done:
		default:
			n++
		}
	}
	return n
}

// closeAll closes every connection and makes later ones close at once.
func (r *run) closeAll() {
	r.stopping.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, c := range r.clients {
		if c != nil {
			if err := c.conn.CloseNow(); err != nil {
				r.recordErr(fmt.Errorf("close %s: %w", c.id, err))
			}
		}
	}
}

func (r *run) recordErr(err error) { r.errs.record(err) }

// read consumes c's messages until its connection ends.
func (r *run) read(c *client) {
	defer r.readers.Done()
	defer close(c.done)
	for {
		text, msg, err := c.conn.ReadMessage()
		if err != nil {
			if !c.selfJoined {
				r.exitedBeforeSelfJoin.Add(1)
			}
			if !c.settled {
				r.exitedUnsettled.Add(1)
			}
			if !r.stopping.Load() {
				r.ends.add(err)
				r.recordErr(fmt.Errorf("read %s: %w", c.id, err))
			}
			return
		}
		if !text {
			r.recordErr(fmt.Errorf("read %s: unexpected binary message", c.id))
			continue
		}
		now := time.Now().UnixNano()
		// Servers that batch queued messages join them with "\n".
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			r.handleLine(c, line, now)
		}
	}
}

func (r *run) handleLine(c *client, line []byte, now int64) {
	kind, rest := classify(line)
	switch kind {
	case lineJoin:
		r.joins.Add(1)
		if !c.selfJoined && string(rest) == c.id {
			c.selfJoined = true
			r.selfJoined.Add(1)
		}
		if !c.settled && bytes.Equal(rest, r.lastID) {
			c.settled = true
			r.settled.Add(1)
		}
	case lineLeave:
	case lineRelay:
		p, ok := parsePayload(rest)
		if !ok || p.sender >= r.cfg.Senders || p.seq >= r.cfg.Messages {
			r.recordErr(fmt.Errorf("read %s: unexpected relay %.80q", c.id, line))
			return
		}
		r.deliver(c, p, now)
	case lineReply:
		r.replies.Add(1)
		if p, ok := parsePayload(rest); ok && int32(p.seq) > c.ownCopy {
			r.replyBeforeCopy.Add(1)
		}
	default:
		r.recordErr(fmt.Errorf("read %s: unexpected line %.80q", c.id, line))
	}
}

func (r *run) deliver(c *client, p payload, now int64) {
	bit := p.sender*r.cfg.Messages + p.seq
	word, mask := bit/64, uint64(1)<<(bit%64)
	if c.seen[word]&mask != 0 {
		r.duplicates.Add(1)
		return
	}
	c.seen[word] |= mask
	if int32(p.seq) < c.maxSeq[p.sender] {
		r.outOfOrder.Add(1)
	} else {
		c.maxSeq[p.sender] = int32(p.seq)
	}
	r.received.Add(1)
	r.lastDeliveryNanos.Store(now)
	r.latency.record((now - p.unixNano) / 1e3)
	if len(r.latencyByURL) > 1 {
		r.latencyByURL[c.idx%len(r.latencyByURL)].record((now - p.unixNano) / 1e3)
	}
	if c.sender && p.sender == c.idx {
		c.ownCopy = max(c.ownCopy, int32(p.seq))
		select {
		case c.acks <- struct{}{}:
		default: // only after ack timeouts freed slots already
		}
	}
}

// send writes c's messages, paced by the rate or by the send window.
func (r *run) send(ctx context.Context, c *client) {
	cfg := r.cfg
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	start := time.Now()
	inFlight := 0
	var buf []byte
	for seq := range cfg.Messages {
		if interval > 0 {
			if !sleepUntil(ctx, start.Add(time.Duration(seq)*interval)) {
				return
			}
		} else {
		takeAcks:
			for inFlight > 0 {
				select {
				case <-c.acks:
					inFlight--
				default:
					break takeAcks
				}
			}
			for inFlight >= cfg.Window {
				select {
				case <-c.acks:
				case <-time.After(cfg.AckTimeout):
					r.ackTimeouts.Add(1)
				case <-c.done:
					return
				case <-ctx.Done():
					return
				}
				inFlight--
			}
		}
		buf = appendPayload(buf[:0], c.idx, seq, time.Now().UnixNano(), cfg.Size)
		if err := c.conn.WriteText(buf); err != nil {
			if !r.stopping.Load() {
				r.recordErr(fmt.Errorf("send %s: %w", c.id, err))
			}
			return
		}
		r.sent.Add(1)
		inFlight++
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
