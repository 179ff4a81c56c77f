package redisbroker

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
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
	waitFor(r.t, 5*time.Second, "redis-server to answer", func() bool {
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
// every node resubscribes by itself and broadcasts cross nodes again.
func TestBroadcastsResumeAfterRedisRestarts(t *testing.T) {
	srv := startPrivateRedis(t)
	prefix := testPrefix()
	a, b := newNode(t, "a", srv.addr(), prefix), newNode(t, "b", srv.addr(), prefix)
	sender := a.dial(t, "sender", "lobby")
	local := a.dial(t, "local", "lobby")
	remote := b.dial(t, "remote", "lobby")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	broadcast := func(text string) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return a.m.Broadcast(ctx, "lobby", wsroom.Text(text), wsroom.Except(a.conn(t, "sender")))
	}
	if err := broadcast("before"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{local, remote} {
		if m := c.next(t); m != "before" {
			t.Fatalf("client %s got %q", c.id, m)
		}
	}

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
	if m := local.next(t); m != "while down" {
		t.Fatalf("local member got %q, want the broadcast made while Redis was down", m)
	}
	remote.none(t, 200*time.Millisecond)
	// Joining a new room during the outage works; the room comes alive with
	// Redis.
	joiner := b.dial(t, "joiner", "late")

	srv.start()
	restarted := time.Now()
	var lossWindow time.Duration
	for i := 0; lossWindow == 0; i++ {
		if time.Since(restarted) > 15*time.Second {
			t.Fatal("no broadcast crossed nodes within 15s of the restart")
		}
		_ = broadcast("probe " + strconv.Itoa(i))
		select {
		case m := <-remote.msgs:
			if m == "" {
				t.Fatal("remote client disconnected")
			}
			lossWindow = time.Since(restarted)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("loss window: %v from redis-server answering again to the first cross-node delivery", lossWindow.Round(time.Millisecond))

	// Both directions work, and every client is still connected.
	if err := b.m.Broadcast(ctx, "lobby", wsroom.Text("from b")); err != nil {
		t.Fatal(err)
	}
	if err := a.m.Broadcast(ctx, "late", wsroom.Text("late news")); err != nil {
		t.Fatal(err)
	}
	if m := joiner.next(t); m != "late news" {
		t.Fatalf("client joined during the outage got %q", m)
	}
	for _, c := range []*wsClient{sender, remote} {
		for {
			m := c.next(t)
			if m == "from b" {
				break
			}
		}
	}
	for _, n := range []*node{a, b} {
		if st := n.broker.Stats(); st.Reconnects < 1 {
			t.Errorf("node %s broker stats after the restart: %+v", n.name, st)
		}
	}
	if got := a.m.Stats().Connections + b.m.Stats().Connections; got != 4 {
		t.Fatalf("%d connections after the restart, want 4", got)
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
	waitFor(t, 5*time.Second, "the broker to reconnect", func() bool { return b.Stats().Reconnects == 1 })
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
