package wsroom

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Liveness: a peer is judged by its progress, not by silence.
//
// Progress is the peer acknowledging bytes: on Linux the socket says how
// many bytes the peer has acknowledged and how many still wait for it
// (TCP_INFO and SIOCOUTQ, on the TCP connection under TLS too). Bytes the
// local kernel took into a send buffer that autotuning keeps growing are
// not progress. Where the socket cannot say (another OS, a connection that
// is not TCP), progress is the local socket accepting bytes, in chunks of
// probeChunk, which can overstate a stalled peer's progress by what the
// kernel buffers.
//
//   - Writes. While data waits for the peer (a write is under way, or
//     the socket holds bytes the peer has not acknowledged), a watchdog
//     checks every watchInterval; a peer that has acknowledged nothing for
//     the write timeout is dead: its socket is closed, without a close
//     frame, since nothing more can reach it.
//   - Pings. The server pings every ping interval. A pong within the ping
//     timeout keeps the connection; so does any progress during it: bytes
//     arriving from the peer, or the peer acknowledging data that was
//     queued before the ping. A peer that is seconds behind a burst reads
//     the ping late, but it is reading. A peer that made no progress at
//     all and sent no pong is dead.

// watchInterval returns how often the watchdog checks a peer with data
// waiting: an eighth of the write timeout, at most half a second, so that a
// stalled peer is found within the write timeout plus half a second.
func watchInterval(writeTimeout time.Duration) time.Duration {
	return min(max(writeTimeout/8, 10*time.Millisecond), 500*time.Millisecond)
}

// liveness is a connection's ping and watchdog state.
type liveness struct {
	// attention tells the writer, between two fragments of a long
	// message, that a control frame or a close waits.
	attention atomic.Bool

	// Guarded by the connection's mu.
	ping     *time.Timer // nil when pings are off
	pingSent []byte      // the payload of the ping awaiting its pong, nil if none
	pingSeq  uint64
	nextPing time.Time
	pingMark progressMark

	// The watchdog. watching is set while the timer runs; mark and the
	// timer belong to whoever set it.
	watch        *time.Timer
	watching     atomic.Bool
	writeBusy    atomic.Bool   // a socket write is under way
	written      atomic.Uint64 // bytes the socket took
	lastProgress atomic.Int64  // unix nanoseconds
	watchMark    progressMark
}

// progressMark is what was seen of the peer's progress at a check.
type progressMark struct {
	in, acked, written uint64
}

// startPing arms the first ping. c.mu must be held.
func (c *Conn) startPingLocked() {
	if d := c.m.cfg.pingInterval; d > 0 {
		c.live.nextPing = time.Now().Add(d)
		c.live.ping = time.AfterFunc(d, c.pingTick)
	}
}

// stopPing stops pinging. c.mu must be held.
func (l *liveness) stopPing() {
	if l.ping != nil {
		l.ping.Stop()
	}
}

// stop stops every timer. c.mu must be held.
func (l *liveness) stop() {
	l.stopPing()
	if l.watch != nil {
		l.watch.Stop()
	}
}

// pingTick runs on the ping timer: it sends a ping, or judges a peer whose
// pong is late.
func (c *Conn) pingTick() {
	c.mu.Lock()
	l := &c.live
	if c.closing {
		c.mu.Unlock()
		return
	}
	if l.pingSent == nil {
		if wait := time.Until(l.nextPing); wait > 0 {
			// A pong reset the timer while this run waited for the lock.
			l.ping.Reset(wait)
			c.mu.Unlock()
			return
		}
		l.pingSeq++
		l.pingSent = strconv.AppendUint(nil, l.pingSeq, 10)
		c.pingOut = l.pingSent
		l.attention.Store(true)
		c.startWriterLocked()
		c.progressedLocked(&l.pingMark)
		l.ping.Reset(c.m.cfg.pingTimeout)
		c.mu.Unlock()
		return
	}
	if c.progressedLocked(&l.pingMark) {
		l.ping.Reset(c.m.cfg.pingTimeout)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.m.stats.pingTimeouts.Add(1)
	c.m.cfg.logger.Info("wsroom: peer did not answer ping", "conn", c.id, "timeout", c.m.cfg.pingTimeout)
	c.m.startClose(c, closeRequest{abort: true, cause: fmt.Errorf("%w: %w: no pong and no progress for %v", ErrClosed, ErrPingTimeout, c.m.cfg.pingTimeout)})
}

// gotPong handles a pong from the peer. Unsolicited pongs are ignored.
func (c *Conn) gotPong(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := &c.live
	if l.pingSent == nil || !bytes.Equal(p, l.pingSent) || c.closing {
		return
	}
	l.pingSent = nil
	l.nextPing = time.Now().Add(c.m.cfg.pingInterval)
	l.ping.Reset(c.m.cfg.pingInterval)
}

// queuePong queues the answer to the peer's ping.
func (c *Conn) queuePong(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing && c.close.sent {
		return
	}
	if len(c.pongs) == maxPongs {
		c.pongs = append(c.pongs[:0], c.pongs[1:]...)
	}
	c.pongs = append(c.pongs, bytes.Clone(p))
	c.live.attention.Store(true)
	c.startWriterLocked()
}

// progressedLocked reports whether the peer made progress since mark, and
// moves mark to now. c.mu must be held.
func (c *Conn) progressedLocked(mark *progressMark) bool {
	in := c.bytesIn.Load()
	s := c.probe.sample()
	written := c.live.written.Load()
	moved := in != mark.in
	if s.ok {
		moved = moved || s.outstanding > 0 && s.acked != mark.acked
	} else {
		moved = moved || c.live.writeBusy.Load() && written != mark.written
	}
	*mark = progressMark{in: in, acked: s.acked, written: written}
	return moved
}

// writeSocket writes p, under the watchdog.
func (c *Conn) writeSocket(p []byte) error {
	l := &c.live
	l.writeBusy.Store(true)
	defer l.writeBusy.Store(false)
	if !l.watching.Load() {
		c.armWatch()
	}
	chunk := len(p)
	if !c.probe.ok() {
		chunk = probeChunk
	}
	for len(p) > 0 {
		n, err := c.netConn.Write(p[:min(len(p), chunk)])
		l.written.Add(uint64(n))
		c.m.stats.bytesOut.Add(uint64(n))
		c.m.stats.writes.Add(1)
		p = p[n:]
		if err != nil {
			return err
		}
	}
	return nil
}

// probeChunk is the largest socket write where progress is measured by
// the local socket taking bytes.
const probeChunk = 16 << 10

// armWatch starts the watchdog unless it runs: the stall clock starts now.
func (c *Conn) armWatch() {
	l := &c.live
	if !l.watching.CompareAndSwap(false, true) {
		return
	}
	s := c.probe.sample()
	l.watchMark = progressMark{acked: s.acked, written: l.written.Load()}
	l.lastProgress.Store(time.Now().UnixNano())
	d := watchInterval(c.m.cfg.writeTimeout)
	if l.watch == nil {
		l.watch = time.AfterFunc(d, c.watchTick)
	} else {
		l.watch.Reset(d)
	}
}

// watchTick runs on the watchdog's timer.
func (c *Conn) watchTick() {
	select {
	case <-c.done:
		return
	default:
	}
	l := &c.live
	s := c.probe.sample()
	t := time.Now()
	written := l.written.Load()
	if s.ok && s.acked != l.watchMark.acked || !s.ok && written != l.watchMark.written {
		l.watchMark = progressMark{acked: s.acked, written: written}
		l.lastProgress.Store(t.UnixNano())
	}
	if !l.writeBusy.Load() && !(s.ok && s.outstanding > 0) {
		// Nothing waits for the peer: stop watching, unless a write
		// started meanwhile and saw the watchdog still running.
		l.watching.Store(false)
		if l.writeBusy.Load() {
			c.armWatch()
		}
		return
	}
	if stalled := t.Sub(time.Unix(0, l.lastProgress.Load())); stalled >= c.m.cfg.writeTimeout {
		c.m.stats.writeTimeouts.Add(1)
		c.m.cfg.logger.Info("wsroom: peer accepts no data", "conn", c.id, "stalled", stalled)
		c.m.startClose(c, closeRequest{abort: true, cause: fmt.Errorf("%w: %w: the peer acknowledged nothing for %v", ErrClosed, ErrWriteTimeout, stalled.Round(time.Millisecond))})
		return
	}
	l.watch.Reset(watchInterval(c.m.cfg.writeTimeout))
}
