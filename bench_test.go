package wsroom

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	c, err := m.Connect(&hijackRecorder{header: http.Header{}, conn: newDiscardConn()}, r, JoinRooms(rooms...))
	if err != nil {
		b.Fatalf("Connect: %v", err)
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
		c, err := m.Connect(w, r, JoinRooms("room"))
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
	for m.Room("room").Len() < members {
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
