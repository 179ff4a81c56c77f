package wsroom

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// The hijacked connection's buffers. net/http hands a hijacker 4 KiB read
// and write buffers; an idle WebSocket needs neither, so the upgrade swaps
// in small ones and gathers writes in a pooled buffer only while a writer
// drains its queue.
const (
	writeBufferSize = 128      // bufio.Writer coder frames control messages into: one whole frame
	gatherLimit     = 64 << 10 // a gathered batch is sent when it reaches this
	writeChunk      = 64 << 10 // each socket write, and so each deadline, covers at most this
)

var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, gatherLimit); return &b }}

// upgradeWriter is the ResponseWriter given to websocket.Accept. Its Hijack
// returns the network connection with small buffers and a gatherWriter
// underneath coder's framing.
type upgradeWriter struct {
	http.ResponseWriter
	readBufferSize int
	writeTimeout   time.Duration

	netConn net.Conn // set by Hijack
	out     *gatherWriter
}

func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	netConn, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(netConn, u.readBufferSize)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent right after its handshake must be in the
		// new reader's buffer, not behind it: websocket.Accept keeps what
		// is buffered and resets the reader onto the bare connection.
		early, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), netConn), max(n, u.readBufferSize))
		if _, err := br.Peek(n); err != nil {
			_ = netConn.Close()
			return nil, nil, fmt.Errorf("wsroom: keep early bytes: %w", err)
		}
	}
	u.netConn = netConn
	u.out = &gatherWriter{conn: netConn, timeout: u.writeTimeout}
	return netConn, bufio.NewReadWriter(br, bufio.NewWriterSize(u.out, writeBufferSize)), nil
}

// gatherWriter is what coder's frames are written to. Outside a batch it
// writes straight to the socket. Between begin and end it gathers the
// frames of a drained queue into one buffer and sends them with one write,
// so each message stays its own WebSocket message while a burst costs one
// system call per 64 KiB instead of one per message.
//
// Every socket write carries a deadline of timeout and covers at most
// writeChunk bytes, so a peer that accepts nothing for timeout is found
// however large the message. A failed write makes every later write fail
// at once; the socket is left for the failing caller to close (the writer
// does in writeFailed), so that the connection's reader cannot notice the
// closed socket first and end the connection as a read failure.
type gatherWriter struct {
	conn    net.Conn
	timeout time.Duration

	mu        sync.Mutex
	gathering bool
	closeSent bool    // a close frame went out: no data frame may follow
	buf       *[]byte // from gatherPool, only while gathering
	err       error   // the first write error; every later write returns it
}

// errCloseSent reports a message offered after a close frame was sent.
var errCloseSent = errors.New("wsroom: close frame sent")

// Write takes what coder/websocket frames: only control frames on a
// connection of ours, since data messages are framed by writeMessage. Each
// arrives whole (coder flushes its small buffer after every frame), so a
// close frame is recognised by its first byte.
func (g *gatherWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	if len(p) > 0 && p[0] == 0x80|0x8 {
		g.closeSent = true
	}
	if g.gathering {
		if g.buf == nil {
			g.buf = gatherPool.Get().(*[]byte)
		}
		if len(*g.buf)+len(p) > gatherLimit {
			if err := g.flushLocked(); err != nil {
				return 0, err
			}
		}
		if len(p) < gatherLimit {
			*g.buf = append(*g.buf, p...)
			return len(p), nil
		}
	}
	return g.writeLocked(p)
}

// writeMessage writes p as one unfragmented, unmasked WebSocket message of
// the given type, as a server sends it. Framing here rather than through
// coder's Conn.Write saves coder's per-message locking, which costs more
// than the frame itself; coder still frames every control message, and
// compression, which would need coder's framing, is never negotiated. It
// must be called between begin and end.
func (g *gatherWriter) writeMessage(binary bool, p []byte) error {
	var header [10]byte
	n := putFrameHeader(&header, binary, len(p))
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if g.closeSent {
		return errCloseSent
	}
	if g.buf == nil {
		g.buf = gatherPool.Get().(*[]byte)
	}
	if len(*g.buf)+n+len(p) > gatherLimit {
		if err := g.flushLocked(); err != nil {
			return err
		}
	}
	*g.buf = append(*g.buf, header[:n]...)
	if len(p) < gatherLimit {
		*g.buf = append(*g.buf, p...)
		return nil
	}
	if err := g.flushLocked(); err != nil {
		return err
	}
	_, err := g.writeLocked(p)
	return err
}

// putFrameHeader writes the header of a final, unmasked frame carrying a
// whole message of length bytes and returns the header's length.
func putFrameHeader(h *[10]byte, binary bool, length int) int {
	h[0] = 0x80 | 0x1 // FIN, text
	if binary {
		h[0] = 0x80 | 0x2
	}
	switch {
	case length < 126:
		h[1] = byte(length)
		return 2
	case length <= 0xFFFF:
		h[1] = 126
		h[2], h[3] = byte(length>>8), byte(length)
		return 4
	}
	h[1] = 127
	for i := range 8 {
		h[9-i] = byte(length >> (8 * i))
	}
	return 10
}

// begin starts gathering.
func (g *gatherWriter) begin() {
	g.mu.Lock()
	g.gathering = true
	g.mu.Unlock()
}

// end sends what was gathered and stops gathering.
func (g *gatherWriter) end() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gathering = false
	err := g.flushLocked()
	if g.buf != nil {
		*g.buf = (*g.buf)[:0]
		gatherPool.Put(g.buf)
		g.buf = nil
	}
	return err
}

func (g *gatherWriter) flushLocked() error {
	if g.buf == nil || len(*g.buf) == 0 {
		return g.err
	}
	_, err := g.writeLocked(*g.buf)
	*g.buf = (*g.buf)[:0]
	return err
}

func (g *gatherWriter) writeLocked(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		if err := g.conn.SetWriteDeadline(time.Now().Add(g.timeout)); err != nil {
			return written, g.fail(err)
		}
		n, err := g.conn.Write(chunk)
		written += n
		p = p[n:]
		// errors.Is, not errors.As into a net.Error: that variable
		// would escape and cost an allocation on every write.
		if err != nil && (n == 0 || !errors.Is(err, os.ErrDeadlineExceeded)) {
			return written, g.fail(err)
		}
		// A timeout after some progress is a slow peer, not a stalled one:
		// go on with a fresh deadline.
	}
	return written, nil
}

func (g *gatherWriter) fail(err error) error {
	g.err = fmt.Errorf("wsroom: write to peer: %w", err)
	return g.err
}
