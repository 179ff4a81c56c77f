package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// faultNodes starts nodes a and b on the Redis at addr, with logs, and
// the clients of the fault tests: sender and local on a, remote on b, all
// in the lobby.
type faultNodes struct {
	a, b                  *nodetest.Node
	logsA, logsB          *nodetest.Logs
	sender, local, remote *nodetest.Client
}

func startFaultNodes(t *testing.T, addr string) *faultNodes {
	t.Helper()
	prefix := testPrefix()
	f := &faultNodes{logsA: new(nodetest.Logs), logsB: new(nodetest.Logs)}
	f.a = nodetest.Start(t, "a", nodeBroker(t, addr, prefix, WithLogger(f.logsA.Logger())))
	f.b = nodetest.Start(t, "b", nodeBroker(t, addr, prefix, WithLogger(f.logsB.Logger())))
	f.sender = f.a.Dial(t, "sender", "lobby")
	f.local = f.a.Dial(t, "local", "lobby")
	f.remote = f.b.Dial(t, "remote", "lobby")
	return f
}

// broadcast sends text from a to the lobby, the sender aside.
func (f *faultNodes) broadcast(t *testing.T, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return f.a.Manager.Broadcast(ctx, "lobby", wsroom.Text(text), f.a.Conn(t, "sender"))
}

// broadcastUntilUnavailable broadcasts prefix+"0", prefix+"1", ... from a
// every 20ms until one returns an error matching ErrBrokerUnavailable (a
// publish failed), and returns what it broadcast. Any other error, or none
// within nodetest.Timeout, fails the test.
func (f *faultNodes) broadcastUntilUnavailable(t *testing.T, prefix string) []string {
	t.Helper()
	var sent []string
	deadline := time.Now().Add(nodetest.Timeout)
	for time.Now().Before(deadline) {
		text := prefix + strconv.Itoa(len(sent))
		err := f.broadcast(t, text)
		sent = append(sent, text)
		switch {
		case errors.Is(err, wsroom.ErrBrokerUnavailable):
			return sent
		case err != nil:
			t.Fatalf("Broadcast %q: %v, want nil or wsroom.ErrBrokerUnavailable", text, err)
		}
		time.Sleep(20 * time.Millisecond) // the pace of the broadcasts, not a wait for a state
	}
	t.Fatalf("no Broadcast failed within %v of the outage (%d made)", nodetest.Timeout, len(sent))
	return nil
}

// awaitProbe broadcasts "probe N" from a every 10ms until the remote
// client gets a probe, and returns what it got before: broadcasts of the
// outage that reached Redis late, which must be in order.
func (f *faultNodes) awaitProbe(t *testing.T) (late []string) {
	t.Helper()
	seq := 0
	send := func(int) {
		_ = f.broadcast(t, "probe "+strconv.Itoa(seq))
		seq++
	}
	for {
		m := f.remote.Probe(t, 10*time.Millisecond, send)
		if strings.HasPrefix(m, "probe ") {
			return late
		}
		late = append(late, m)
	}
}

// checkRecovered checks that broadcasts cross nodes both ways again, that
// every client is still connected, that the lobby's clients got nothing but
// probes since the first probe, and that both brokers logged the recovery.
func (f *faultNodes) checkRecovered(t *testing.T) {
	t.Helper()
	f.b.Broadcast(t, "lobby", "from b")
	f.sender.Expect(t, "from b") // a's broadcasts all left the sender out
	for _, c := range []*nodetest.Client{f.local, f.remote} {
		for _, m := range c.Until(t, "from b") {
			if !strings.HasPrefix(m, "probe ") {
				t.Fatalf("client %s got %q between the probes", c.ID, m)
			}
		}
	}
	for _, n := range []*nodetest.Node{f.a, f.b} {
		if st := brokerOf(n).Stats(); st.Reconnects < 1 || st.Connections != 1 {
			t.Errorf("node %s broker stats after the outage: %+v", n.Name, st)
		}
	}
	f.logsA.Await(t, slog.LevelInfo, "redisbroker: pub/sub connection restored")
	f.logsB.Await(t, slog.LevelInfo, "redisbroker: pub/sub connection restored")
	for _, c := range []*nodetest.Client{f.sender, f.local, f.remote} {
		if !c.Connected() {
			t.Errorf("client %s was disconnected by the outage", c.ID)
		}
	}
}

// checkInOrder fails the test unless every message of got is prefix
// followed by an increasing number.
func checkInOrder(t *testing.T, who, prefix string, got []string) {
	t.Helper()
	last := -1
	for _, m := range got {
		n, err := strconv.Atoi(strings.TrimPrefix(m, prefix))
		if !strings.HasPrefix(m, prefix) || err != nil || n <= last {
			t.Fatalf("%s got %q after %s%d: %q", who, m, prefix, last, got)
		}
		last = n
	}
}

// When Redis dies, broadcasts still reach local members, then fail once a
// publish has failed, and WebSocket clients stay connected; when it comes
// back on the same address, every node resubscribes by itself and
// broadcasts cross nodes again. Each broker logs the loss and the recovery.
func TestBroadcastsResumeAfterRedisRestarts(t *testing.T) {
	srv := startPrivateRedis(t)
	f := startFaultNodes(t, srv.addr())
	if err := f.broadcast(t, "before"); err != nil {
		t.Fatal(err)
	}
	f.local.Expect(t, "before")
	f.remote.Expect(t, "before")

	srv.kill()
	killed := time.Now()
	down := f.broadcastUntilUnavailable(t, "while down ")
	t.Logf("Broadcast reported the outage %v after the kill", time.Since(killed).Round(time.Millisecond))
	f.local.Expect(t, down...)
	f.logsA.Await(t, slog.LevelWarn, "redisbroker: pub/sub connection lost")
	f.logsB.Await(t, slog.LevelWarn, "redisbroker: pub/sub connection lost")
	// Joining a new room during the outage works; the room comes alive with
	// Redis.
	joiner := f.b.Dial(t, "joiner", "late")

	srv.start()
	restarted := time.Now()
	late := f.awaitProbe(t)
	t.Logf("loss window: %v from redis-server answering again to the first cross-node delivery", time.Since(restarted).Round(time.Millisecond))
	checkInOrder(t, "the remote client, before the first probe,", "while down ", late)

	f.a.Broadcast(t, "late", "late news")
	joiner.Expect(t, "late news")
	f.checkRecovered(t)
	if got := f.a.Manager.Stats().Connections + f.b.Manager.Stats().Connections; got != 4 {
		t.Fatalf("%d connections after the restart, want 4", got)
	}
}

// A Redis that stops answering while its connections stay open (here
// stopped with SIGSTOP; a dead network path does the same) is found by the
// health check within 5s: each broker drops its Pub/Sub connection, logs
// the loss and connects again, and is back as soon as Redis answers.
// Meanwhile broadcasts reach local members, publishes fail within their
// timeout and Broadcast reports it, and WebSocket clients stay connected.
func TestHalfOpenPubSubConnectionIsDroppedWithinFiveSeconds(t *testing.T) {
	srv := startPrivateRedis(t)
	f := startFaultNodes(t, srv.addr())
	if err := f.broadcast(t, "before"); err != nil {
		t.Fatal(err)
	}
	f.local.Expect(t, "before")
	f.remote.Expect(t, "before")

	srv.stop()
	stopped := time.Now()
	f.logsA.Await(t, slog.LevelWarn, "redisbroker: pub/sub connection lost")
	f.logsB.Await(t, slog.LevelWarn, "redisbroker: pub/sub connection lost")
	detected := time.Since(stopped)
	t.Logf("both nodes dropped their Pub/Sub connection %v after redis-server stopped (health check every %v)", detected.Round(time.Millisecond), DefaultHealthCheck)
	if detected > 5*time.Second {
		t.Fatalf("the half-open connections were dropped after %v, want within 5s", detected)
	}
	for _, n := range []*nodetest.Node{f.a, f.b} {
		if st := brokerOf(n).Stats(); st.Unresponsive != 1 {
			t.Errorf("node %s broker stats after the health check: %+v, want Unresponsive 1", n.Name, st)
		}
	}

	down := f.broadcastUntilUnavailable(t, "while stopped ")
	t.Logf("Broadcast reported the outage %v after redis-server stopped", time.Since(stopped).Round(time.Millisecond))
	f.local.Expect(t, down...)

	srv.resume()
	resumed := time.Now()
	late := f.awaitProbe(t)
	t.Logf("loss window: %v from redis-server answering again (SIGCONT) to the first cross-node delivery; %v in all since it stopped",
		time.Since(resumed).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	checkInOrder(t, "the remote client, before the first probe,", "while stopped ", late)
	f.checkRecovered(t)
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
		if err := publishOne(ctx, b, room, []byte(room)); err != nil {
			t.Fatal(err)
		}
		if p := got.next(t); string(p) != room {
			t.Fatalf("got %q, want %q", p, room)
		}
	}
}

// A batch whose reply is lost (the connection drops after Redis ran it) is
// reported failed and never sent again, although the client would retry
// other commands: each publication is delivered exactly once.
func TestFailedPublishIsNeverRetried(t *testing.T) {
	requireRedis(t, sharedAddr)
	ctx := ctxFor(t)
	prefix := testPrefix()
	proxy := newReplyDropper(t, sharedAddr)
	// MaxRetries 3: go-redis would retry an ordinary command.
	pub := newBroker(t, newRetryingClient(t, proxy.addr), prefix)
	sub := newBroker(t, newClient(t, sharedAddr, 0), prefix)
	got := make(collector, 10)
	s, err := sub.Subscribe(ctx, "r", got.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := publishOne(ctx, pub, "r", []byte("warm")); err != nil {
		t.Fatal(err)
	}
	if p := got.next(t); string(p) != "warm" {
		t.Fatalf("got %q, want warm", p)
	}

	proxy.dropNextReply()
	batch := []wsroom.Publication{{Room: "r", Payload: []byte("1")}, {Room: "r", Payload: []byte("2")}, {Room: "r", Payload: []byte("3")}}
	if err := pub.Publish(ctx, batch); err == nil {
		t.Fatal("Publish succeeded although its reply was lost")
	}
	if err := publishOne(ctx, pub, "r", []byte("after")); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for range 4 {
		seen = append(seen, string(got.next(t)))
	}
	if fmt.Sprint(seen) != "[1 2 3 after]" {
		t.Fatalf("the subscriber got %q, want each publication once: [1 2 3 after]", seen)
	}
	if st := pub.Stats(); st.PublishErrors != 3 || st.Published != 2 {
		t.Fatalf("publisher stats %+v, want 3 publish errors and 2 published", st)
	}
}
