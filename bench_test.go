package wsroom

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// discardConn is a peer that takes every byte at once and never sends:
// members for benchmarks that need more connections than file descriptors
// allow, while every wsroom code path stays the real one.
type discardConn struct {
	closeOnce sync.Once
	closed    chan struct{}
}

func newDiscardConn() *discardConn { return &discardConn{closed: make(chan struct{})} }

func (d *discardConn) Read([]byte) (int, error) {
	<-d.closed
	return 0, net.ErrClosed
}

func (d *discardConn) Write(p []byte) (int, error) {
	select {
	case <-d.closed:
		return 0, net.ErrClosed
	default:
		return len(p), nil
	}
}

func (d *discardConn) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return nil
}

func (d *discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (d *discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (d *discardConn) SetDeadline(time.Time) error      { return nil }
func (d *discardConn) SetReadDeadline(time.Time) error  { return nil }
func (d *discardConn) SetWriteDeadline(time.Time) error { return nil }

// hijackRecorder is a ResponseWriter whose Hijack hands over a discardConn.
type hijackRecorder struct {
	header http.Header
	conn   net.Conn
}

func (w *hijackRecorder) Header() http.Header         { return w.header }
func (w *hijackRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijackRecorder) WriteHeader(int)             {}
func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// connectDiscarding registers a connection over a discardConn through the
// real Connect.
func connectDiscarding(b testing.TB, m *ConnectionManager, rooms ...string) *Conn {
	r := httptest.NewRequest(http.MethodGet, "http://wsroom.test/", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	c, err := m.Connect(&hijackRecorder{header: http.Header{}, conn: newDiscardConn()}, r, nil)
	if err != nil {
		b.Fatalf("Connect: %v", err)
	}
	for _, room := range rooms {
		if err := m.Join(context.Background(), c, room); err != nil {
			b.Fatalf("Join: %v", err)
		}
	}
	return c
}

// waitDrained waits until every queued message has been written.
func waitDrained(b testing.TB, m *ConnectionManager) {
	deadline := time.Now().Add(waitTimeout)
	for {
		s := m.Stats()
		if s.Sent >= s.Queued {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("writers did not drain: %+v", s)
		}
		runtime.Gosched()
	}
}

// shutdownBench closes every connection at once, since a discardConn never
// answers the close handshake, and waits until they are all closed.
func shutdownBench(b testing.TB, m *ConnectionManager) {
	now, cancel := context.WithCancel(context.Background())
	cancel()
	_ = m.Shutdown(now)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		b.Fatalf("Shutdown: %v", err)
	}
}

// BenchmarkBroadcast measures what a broadcast costs its caller: queuing
// one shared message to every member and waking each member's writer. The
// writers drain between iterations, outside the timer, so every iteration
// finds idle members, the common case.
func BenchmarkBroadcast(b *testing.B) {
	for _, members := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			m, err := New(WithPing(0, time.Second))
			if err != nil {
				b.Fatal(err)
			}
			defer shutdownBench(b, m)
			for range members {
				connectDiscarding(b, m, "room")
			}
			msg := Text("a message of some sixty bytes, a typical chat line or event")
			ctx := context.Background()
			// One broadcast first: each member's queue ring and writer
			// are set up once, not per broadcast.
			if err := m.Broadcast(ctx, "room", msg); err != nil {
				b.Fatal(err)
			}
			waitDrained(b, m)
			b.ReportAllocs()
			var timed time.Duration
			for b.Loop() {
				start := time.Now()
				if err := m.Broadcast(ctx, "room", msg); err != nil {
					b.Fatal(err)
				}
				timed += time.Since(start)
				b.StopTimer()
				waitDrained(b, m)
				b.StartTimer()
			}
			b.ReportMetric(float64(timed.Nanoseconds())/float64(b.N*members), "ns/recipient")
		})
	}
}

// BenchmarkDeliveries measures end-to-end throughput: broadcasts to a room
// of 100 clients over real loopback sockets, counted when each client has
// read them.
func BenchmarkDeliveries(b *testing.B) {
	const members = 100
	m, err := New()
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, nil)
		if err == nil {
			err = m.Join(context.Background(), c, "room")
		}
		if err != nil {
			return
		}
		for {
			if _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	var received atomic.Int64
	var readers sync.WaitGroup
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		readers.Wait()
		srv.Close()
	}()
	for range members {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		readers.Go(func() {
			for {
				if _, _, err := ws.Read(context.Background()); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	for len(m.Members("room")) < members {
		runtime.Gosched()
	}

	msg := Text("a message of some sixty bytes, a typical chat line or event")
	ctx := context.Background()
	const window = 1024 // broadcasts a reader may lag behind, far below the queue limit
	b.ReportAllocs()
	start := time.Now()
	sent := 0
	for b.Loop() {
		if err := m.Broadcast(ctx, "room", msg); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent%window == 0 {
			waitReceived(b, &received, int64(members*(sent-window/2)))
		}
	}
	waitReceived(b, &received, int64(members*sent))
	elapsed := time.Since(start)
	b.ReportMetric(float64(members*sent)/elapsed.Seconds(), "deliveries/s")
	if s := m.Stats(); s.Evicted != 0 {
		b.Fatalf("readers were evicted: %+v", s)
	}
}

func waitReceived(b *testing.B, received *atomic.Int64, want int64) {
	deadline := time.Now().Add(waitTimeout)
	for received.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("readers got %d of %d messages", received.Load(), want)
		}
		runtime.Gosched()
	}
}

// frameSource repeats one encoded frame forever: a peer that sends the same
// message again and again, with no socket in the way.
type frameSource struct {
	frame []byte
	off   int
}

func (s *frameSource) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], s.frame[s.off:])
		n += k
		s.off = (s.off + k) % len(s.frame)
	}
	return n, nil
}

// BenchmarkRead measures what reading a message costs: parsing and
// unmasking its frame, and for text the UTF-8 check, which the binary
// case skips. The difference between the two is the check's cost.
func BenchmarkRead(b *testing.B) {
	// Mostly ASCII with some multi-byte runes, as chat text is.
	line := strings.Repeat("chat line, café, 你好 🍍, more words. ", 32)
	for _, size := range []int{1 << 10, 1 << 20} {
		payload := []byte(strings.Repeat(line, size/len(line)+1)[:size])
		for len(payload) > 0 && !utf8.Valid(payload) { // do not cut a rune
			payload = payload[:len(payload)-1]
		}
		for _, op := range []opcode{opText, opBinary} {
			name := fmt.Sprintf("%s/%dKiB", map[opcode]string{opText: "text", opBinary: "binary"}[op], size>>10)
			b.Run(name, func(b *testing.B) {
				m, err := New(WithReadLimit(int64(size)))
				if err != nil {
					b.Fatal(err)
				}
				var header [10]byte
				n := putHeader(&header, true, op, len(payload))
				header[1] |= maskBit
				frame := slices.Concat(header[:n], []byte{1, 2, 3, 4}, payload)
				unmask(frame[n+4:], binary.LittleEndian.Uint32([]byte{1, 2, 3, 4}), 0)
				c := &Conn{m: m, br: bufio.NewReaderSize(&frameSource{frame: frame}, readBufferSize)}
				ctx := context.Background()
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for b.Loop() {
					msg, err := c.Read(ctx)
					if err != nil || msg.Len() != len(payload) {
						b.Fatalf("Read: %v, %d bytes", err, msg.Len())
					}
				}
			})
		}
	}
}
