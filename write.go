package wsroom

import (
	"fmt"
	"sync"
)

// The write side. Each connection has at most one writer goroutine, which
// exists only while there is something to write: queued messages, pongs,
// the server's ping, the close frame. It owns every write to the socket.
//
// The writer gathers the frames of a drained queue into one buffer and
// sends it with one write, so each message stays its own WebSocket message
// while a burst costs one system call per 64 KiB instead of one per
// message. A message longer than fragmentSize is sent as several frames,
// and control frames (pongs, pings, the close frame) are written between
// them: none waits behind a whole large message.
//
// Socket writes carry no deadline: whether the peer is alive is judged by
// its progress (see liveness.go), and a dead peer's socket is closed under
// the blocked write.

const (
	// gatherLimit is the most one socket write carries.
	gatherLimit = 64 << 10
	// fragmentSize is the largest frame of a message; longer messages
	// are fragmented so that control frames can go between the parts.
	fragmentSize = 16 << 10
	// batchMessages is how many messages the writer takes from the queue
	// under one lock.
	batchMessages = 16
	// unsentLimit is what a socket may hold that it has not yet sent,
	// where the kernel allows a limit (see newProbe).
	unsentLimit = 32 << 10
	// maxPongs bounds the pongs waiting to be written: beyond it the
	// oldest is dropped, as RFC 6455 allows (only the last ping must be
	// answered).
	maxPongs = 16
)

// gatherPools hold the writer's buffers in four sizes, so that a writer
// blocked on a slow peer holds a buffer the size of its batch, not 64 KiB.
var gatherPools = [...]struct {
	size int
	pool sync.Pool
}{{size: 512}, {size: 4 << 10}, {size: 16 << 10}, {size: gatherLimit}}

func getBuffer(size int) *[]byte {
	for i := range gatherPools {
		p := &gatherPools[i]
		if size <= p.size || i == len(gatherPools)-1 {
			if b, ok := p.pool.Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, 0, p.size)
			return &b
		}
	}
	panic("unreachable")
}

func putBuffer(b *[]byte) {
	*b = (*b)[:0]
	for i := range gatherPools {
		if cap(*b) == gatherPools[i].size {
			gatherPools[i].pool.Put(b)
			return
		}
	}
}

// startWriterLocked starts the writer if none runs. c.mu must be held.
func (c *Conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		if c.writeLoopFunc == nil {
			c.writeLoopFunc = c.writeLoop
		}
		go c.writeLoopFunc()
	}
}

// writeLoop is the connection's writer: it writes until nothing is left,
// and ends the connection once it has written the close frame or the
// socket failed.
func (c *Conn) writeLoop() {
	w := frameWriter{c: c}
	defer w.release()
	var batch [batchMessages]entry
	for {
		next, err := c.writeStep(&w, &batch)
		if err != nil {
			c.writeFailed(err)
			next = writerEnd
		}
		switch next {
		case writerIdle:
			return
		case writerEnd:
			// The buffer goes back first: finish may wait for the
			// peer's close frame.
			w.release()
			c.finish()
			return
		}
	}
}

// What the writer does after a step.
const (
	writerMore = iota // write on
	writerIdle        // nothing left: the writer has given up its role
	writerEnd         // the connection ends
)

// writeStep takes the control frames and a batch of messages from the
// queue, or the close frame, and writes them.
func (c *Conn) writeStep(w *frameWriter, batch *[batchMessages]entry) (int, error) {
	c.mu.Lock()
	if c.close.abort || c.close.aborted {
		c.mu.Unlock()
		return writerEnd, nil
	}
	control := c.takeControlLocked()
	sendClose := c.closing && c.queue.n == 0
	// A batch is at most batchMessages messages and, but for its first,
	// gatherLimit bytes: a writer blocked on a slow peer holds little
	// that the budget cannot take back.
	n, size := 0, 0
	for n < len(batch) && c.queue.n > 0 && (n == 0 || size+c.queue.peekSize() <= gatherLimit) {
		batch[n] = c.takeLocked()
		size += batch[n].size
		n++
	}
	if len(control) == 0 && n == 0 && !sendClose {
		if !w.pending() {
			c.writing = false
			c.mu.Unlock()
			return writerIdle, nil
		}
		// Write out what was gathered before giving up the writer's
		// role: another writer must not start while this one writes.
		c.mu.Unlock()
		return writerMore, w.flush()
	}
	status := c.close.status
	c.mu.Unlock()

	w.hint = min(size+10*n, gatherLimit)
	err := w.control(control)
	sent := 0
	for err == nil && sent < n {
		var done int
		done, err = w.messages(batch[sent:n])
		// Copied into the buffer: the payloads no longer count against
		// the budget.
		for i := sent; i < sent+done; i++ {
			c.written(batch[i])
		}
		sent += done
		if done == 0 && err == nil {
			break // a close that drops the queue interrupted the batch
		}
	}
	c.m.stats.sent.Add(uint64(sent))
	for i := sent; i < n; i++ {
		c.written(batch[i])
	}
	clear(batch[:n])
	if err != nil || !sendClose {
		return writerMore, err
	}
	return writerEnd, w.closeFrame(status)
}

// writeFailed ends a connection whose socket write failed: the peer is
// gone, or its socket was closed for making no progress.
func (c *Conn) writeFailed(err error) {
	c.mu.Lock()
	ours := c.closing
	c.mu.Unlock()
	if !ours {
		c.m.cfg.logger.Info("wsroom: write failed", "conn", c.id, "err", err)
	}
	c.m.startClose(c, closeRequest{abort: true, cause: fmt.Errorf("wsroom: connection lost: write: %w", err)})
}

// takeControlLocked returns the control frames to write next and clears
// the attention flag. c.mu must be held.
func (c *Conn) takeControlLocked() []controlFrame {
	c.live.attention.Store(false)
	if len(c.pongs) == 0 && c.pingOut == nil {
		return nil
	}
	frames := make([]controlFrame, 0, len(c.pongs)+1)
	for _, p := range c.pongs {
		frames = append(frames, controlFrame{opPong, p})
	}
	c.pongs = nil
	if c.pingOut != nil {
		frames = append(frames, controlFrame{opPing, c.pingOut})
		c.pingOut = nil
	}
	return frames
}

type controlFrame struct {
	op      opcode
	payload []byte
}

// frameWriter gathers frames into a pooled buffer and writes it to the
// socket when it is full or the queue is drained.
type frameWriter struct {
	c    *Conn
	buf  *[]byte
	hint int // bytes the current batch needs, to size a new buffer
}

// frame appends one frame, writing out what was gathered first if it does
// not fit.
func (w *frameWriter) frame(fin bool, op opcode, payload []byte) error {
	if err := w.header(fin, op, len(payload)); err != nil {
		return err
	}
	*w.buf = append(*w.buf, payload...)
	return nil
}

// header appends a frame's header, making room first for the header and
// the size bytes of payload that follow it.
func (w *frameWriter) header(fin bool, op opcode, size int) error {
	var header [10]byte
	n := putHeader(&header, fin, op, size)
	if w.buf != nil && len(*w.buf)+n+size > cap(*w.buf) {
		full := cap(*w.buf)
		if err := w.flush(); err != nil {
			return err
		}
		// A full buffer means the queue is deeper than it: the next
		// one is a size larger, up to gatherLimit, so that a backlog
		// goes out in few writes.
		if full < gatherLimit {
			w.release()
			w.hint = max(w.hint, full+1)
		}
	}
	if w.buf == nil {
		w.buf = getBuffer(max(w.hint, n+size))
	}
	*w.buf = append(*w.buf, header[:n]...)
	return nil
}

// coalesced appends the messages of batch as one frame, joined by sep.
func (w *frameWriter) coalesced(batch []entry, sep []byte) error {
	size := len(sep) * (len(batch) - 1)
	for _, e := range batch {
		size += e.size
	}
	if err := w.header(true, dataOpcode(batch[0].msg), size); err != nil {
		return err
	}
	for i, e := range batch {
		if i > 0 {
			*w.buf = append(*w.buf, sep...)
		}
		*w.buf = append(*w.buf, e.msg.Bytes()...)
	}
	return nil
}

// messages writes messages from batch, at least the first, and returns
// how many it wrote whole. A close that drops the queue stops it between
// two fragments of a long message.
func (w *frameWriter) messages(batch []entry) (int, error) {
	if sep := w.c.m.cfg.coalesce; sep != nil && len(batch) > 1 {
		if end := coalesceRun(batch, sep); end > 1 {
			return end, w.coalesced(batch[:end], sep)
		}
	}
	data, op := batch[0].msg.Bytes(), dataOpcode(batch[0].msg)
	for len(data) > fragmentSize {
		if err := w.frame(false, op, data[:fragmentSize]); err != nil {
			return 0, err
		}
		data, op = data[fragmentSize:], opContinuation
		if w.c.live.attention.Load() {
			stop, err := w.service()
			if err != nil || stop {
				return 0, err
			}
		}
	}
	return 1, w.frame(true, op, data)
}

// service writes the control frames that arrived while a long message was
// being written, and reports whether a close that drops the queue started.
func (w *frameWriter) service() (bool, error) {
	c := w.c
	c.mu.Lock()
	control := c.takeControlLocked()
	stop := c.closing && !c.close.flush || c.close.abort || c.close.aborted
	c.mu.Unlock()
	if err := w.control(control); err != nil {
		return false, err
	}
	return stop, w.flush()
}

// control appends control frames.
func (w *frameWriter) control(frames []controlFrame) error {
	for _, f := range frames {
		if err := w.frame(true, f.op, f.payload); err != nil {
			return err
		}
	}
	return nil
}

// closeFrame writes the close frame and records it sent.
func (w *frameWriter) closeFrame(status closePayload) error {
	var p [maxControlPayload]byte
	if err := w.frame(true, opClose, appendClosePayload(p[:0], status)); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	w.c.mu.Lock()
	w.c.close.sent = true
	w.c.mu.Unlock()
	return nil
}

// pending reports whether gathered bytes wait to be written.
func (w *frameWriter) pending() bool { return w.buf != nil && len(*w.buf) > 0 }

// flush writes what was gathered.
func (w *frameWriter) flush() error {
	if w.buf == nil || len(*w.buf) == 0 {
		return nil
	}
	err := w.c.writeSocket(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

// release returns the buffer to its pool.
func (w *frameWriter) release() {
	if w.buf != nil {
		putBuffer(w.buf)
		w.buf = nil
	}
}

func dataOpcode(m Message) opcode {
	if m.binary() {
		return opBinary
	}
	return opText
}

// coalesceRun returns how many messages from the start of batch, all of
// one type, fit in one frame of at most gatherLimit bytes joined by sep.
func coalesceRun(batch []entry, sep []byte) int {
	size := batch[0].size
	end := 1
	for end < len(batch) && batch[end].msg.binary() == batch[0].msg.binary() && size+len(sep)+batch[end].size <= gatherLimit {
		size += len(sep) + batch[end].size
		end++
	}
	return end
}
