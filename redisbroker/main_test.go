package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
	"go.uber.org/goleak"
)

// sharedAddr is the Redis most tests use; the fault test starts its own.
const sharedAddr = "127.0.0.1:6379"

func TestMain(m *testing.M) {
	// go-redis logs every failed dial of its pools; the tests that stop
	// servers make many, and say themselves what went wrong.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

// quietLogger discards go-redis's internal log.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// requireRedis skips the test when no Redis listens at addr, unless CI is
// "true", where a missing Redis is a failure.
func requireRedis(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Redis is required at %s (CI=true): %v", addr, err)
	}
	t.Skipf("no Redis at %s (%v): start one with `redis-server --port 6379` to run this test", addr, err)
}

// newClient returns a client of the Redis at addr, closed when t ends.
func newClient(t testing.TB, addr string, protocol int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: protocol})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newBroker returns a broker with prefix and opts, closed when t ends.
func newBroker(t testing.TB, c redis.UniversalClient, prefix string, opts ...Option) *Broker {
	t.Helper()
	return nodetest.Open(t, func() (*Broker, error) {
		return New(c, append([]Option{WithPrefix(prefix)}, opts...)...)
	})
}

// testPrefix returns a channel prefix no other test run uses, so tests may
// share a Redis.
func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "wsroomtest:" + hex.EncodeToString(b[:]) + ":"
}

// numSub returns how many connections Redis has subscribed to channel.
func numSub(t testing.TB, c *redis.Client, channel string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB %s: %v", channel, err)
	}
	return n[channel]
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// slowProxy forwards TCP connections to target, holding back every chunk a
// client sends for delay: a Redis client behind it has its commands reach
// Redis late, as over a slow network.
func slowProxy(t testing.TB, target string, delay time.Duration) string {
	t.Helper()
	return tcpProxy(t, target, func([]byte) bool { time.Sleep(delay); return true }, nil)
}

// tcpProxy forwards TCP connections from a loopback listener to target,
// until t ends, and returns the listener's address. Each chunk read from a
// client is first passed to toServer, each chunk read from target to
// toClient (nil passes everything); a hook that returns false closes both
// connections instead of forwarding the chunk.
func tcpProxy(t testing.TB, target string, toServer, toClient func([]byte) bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	pump := func(dst, src net.Conn, hook func([]byte) bool) {
		defer wg.Done()
		defer func() { _ = dst.Close(); _ = src.Close() }()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if err != nil || (hook != nil && !hook(buf[:n])) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			wg.Add(2)
			go pump(server, client, toServer)
			go pump(client, server, toClient)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// publishOne publishes payload to room with b, as a batch of one.
func publishOne(ctx context.Context, b *Broker, room string, payload []byte) error {
	return b.Publish(ctx, []wsroom.Publication{{Room: room, Payload: payload}})
}

// newRetryingClient returns a client of the Redis at addr that retries a
// failed command three times, as go-redis does by default, closed when t
// ends.
func newRetryingClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 3})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// replyDropper forwards TCP connections to a Redis; once armed, it drops
// the next reply Redis sends and closes that connection, as a network that
// fails after the command reached Redis.
type replyDropper struct {
	addr  string
	armed atomic.Bool
}

func newReplyDropper(t testing.TB, target string) *replyDropper {
	t.Helper()
	p := &replyDropper{}
	p.addr = tcpProxy(t, target, nil, func([]byte) bool { return !p.armed.CompareAndSwap(true, false) })
	return p
}

// dropNextReply arms the proxy.
func (p *replyDropper) dropNextReply() { p.armed.Store(true) }
