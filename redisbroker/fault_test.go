package redisbroker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

const redisServerBin = "/usr/bin/redis-server"

// privateRedis is a redis-server this test started and alone may kill.
type privateRedis struct {
	t    *testing.T
	port string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := os.Stat(redisServerBin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required (CI=true): %v", redisServerBin, err)
		}
		t.Skipf("%s not found: install redis-server to run this test", redisServerBin)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	r := &privateRedis{t: t, port: port}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) addr() string { return "127.0.0.1:" + r.port }

// start runs redis-server on r's port and waits until it answers.
func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(redisServerBin, "--port", r.port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	nodetest.WaitFor(r.t, "redis-server to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// kill kills the server this test started, by its PID, and reaps it.
func (r *privateRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// When Redis dies, broadcasts fail but still reach local members and
// WebSocket clients stay connected; when it comes back on the same address,
// every node resubscribes by itself and broadcasts cross nodes again. Each
// broker logs the loss and the recovery.
func TestBroadcastsResumeAfterRedisRestarts(t *testing.T) {
	srv := startPrivateRedis(t)
	prefix := testPrefix()
	var logsA, logsB nodetest.Logs
	a := nodetest.Start(t, "a", nodeBroker(t, srv.addr(), prefix, WithLogger(logsA.Logger())))
	b := nodetest.Start(t, "b", nodeBroker(t, srv.addr(), prefix, WithLogger(logsB.Logger())))
	sender := a.Dial(t, "sender", "lobby")
	local := a.Dial(t, "local", "lobby")
	remote := b.Dial(t, "remote", "lobby")

	// broadcast sends text from a to the lobby, the sender aside.
	broadcast := func(text string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return a.Manager.Broadcast(ctx, "lobby", wsroom.Text(text), a.Conn(t, "sender"))
	}
	if err := broadcast("before"); err != nil {
		t.Fatal(err)
	}
	local.Expect(t, "before")
	remote.Expect(t, "before")

	srv.kill()
	start := time.Now()
	err := broadcast("while down")
	if err == nil {
		t.Fatal("Broadcast succeeded while Redis was down")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Broadcast took %v to fail while Redis was down", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("Broadcast while down: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
	local.Expect(t, "while down")
	logsA.Await(t, slog.LevelWarn, "redisbroker: pub/sub connection lost")
	logsB.Await(t, slog.LevelWarn, "redisbroker: pub/sub connection lost")
	// Joining a new room during the outage works; the room comes alive with
	// Redis.
	joiner := b.Dial(t, "joiner", "late")

	srv.start()
	restarted := time.Now()
	first := remote.Probe(t, 10*time.Millisecond, func(seq int) { _ = broadcast("probe " + strconv.Itoa(seq)) })
	t.Logf("loss window: %v from redis-server answering again to the first cross-node delivery", time.Since(restarted).Round(time.Millisecond))
	if !strings.HasPrefix(first, "probe ") {
		t.Fatalf("remote client's first message after the outage is %q, want a probe made after it", first)
	}

	// Both directions work, and every client is still connected.
	b.Broadcast(t, "lobby", "from b")
	a.Broadcast(t, "late", "late news")
	joiner.Expect(t, "late news")
	sender.Expect(t, "from b") // a's broadcasts all left the sender out
	for _, c := range []*nodetest.Client{local, remote} {
		for _, m := range c.Until(t, "from b") {
			if !strings.HasPrefix(m, "probe ") {
				t.Fatalf("client %s got %q between the probes", c.ID, m)
			}
		}
	}
	for _, n := range []*nodetest.Node{a, b} {
		if st := brokerOf(n).Stats(); st.Reconnects < 1 {
			t.Errorf("node %s broker stats after the restart: %+v", n.Name, st)
		}
	}
	logsA.Await(t, slog.LevelInfo, "redisbroker: pub/sub connection restored")
	logsB.Await(t, slog.LevelInfo, "redisbroker: pub/sub connection restored")
	if got := a.Manager.Stats().Connections + b.Manager.Stats().Connections; got != 4 {
		t.Fatalf("%d connections after the restart, want 4", got)
	}
	for _, c := range []*nodetest.Client{sender, local, remote, joiner} {
		if !c.Connected() {
			t.Errorf("client %s was disconnected by the outage", c.ID)
		}
	}
}

// A Pub/Sub connection closed by Redis (CLIENT KILL) while Redis stays up
// comes back subscribed to every room.
func TestSubscriptionsComeBackAfterTheConnectionIsKilled(t *testing.T) {
	srv := startPrivateRedis(t)
	ctx := ctxFor(t)
	prefix := testPrefix()
	admin := newClient(t, srv.addr(), 0)
	b := newBroker(t, newClient(t, srv.addr(), 0), prefix)
	rooms := []string{"one", "two", "three"}
	got := make(collector, 10)
	for _, room := range rooms {
		s, err := b.Subscribe(ctx, room, got.deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "the broker to reconnect", func() bool { return b.Stats().Reconnects == 1 })
	for _, room := range rooms {
		if n := numSub(t, admin, channelName(prefix, room)); n != 1 {
			t.Fatalf("NUMSUB %s = %d after the reconnect, want 1", room, n)
		}
		if err := b.Publish(ctx, room, []byte(room)); err != nil {
			t.Fatal(err)
		}
		if p := got.next(t); string(p) != room {
			t.Fatalf("got %q, want %q", p, room)
		}
	}
}
