package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// TestBroadcastsResumeAfterServerRestart kills the NATS server under a
// two-node cluster and starts it again on the same port. While it is down,
// publishes fail at once, later broadcasts report it, local members still
// get local broadcasts and WebSocket clients stay connected; after the
// restart, broadcasts cross nodes again with no call from the user,
// including in a room first joined during the outage. Each broker logs the
// loss and the recovery.
func TestBroadcastsResumeAfterServerRestart(t *testing.T) {
	server := startNATSServer(t, "")
	n0, n1, logs0, logs1, local, remote := lobbyOnTwoNodes(t, server)

	server.kill()
	for _, n := range []*nodetest.Node{n0, n1} {
		nodetest.WaitFor(t, n.Name+" to see the outage", func() bool { return !brokerOf(n).Stats().Connected })
	}
	// The broadcast is delivered here and queued; its publish fails at once.
	n0.Broadcast(t, "lobby", "during")
	local.Expect(t, "during")
	nodetest.WaitFor(t, "the failed publish to be counted", func() bool { return n0.Manager.Stats().BrokerPublishErrors == 1 })
	err := n0.Manager.Broadcast(context.Background(), "lobby", wsroom.Text("reported"))
	if !errors.Is(err, wsroom.ErrBrokerUnavailable) || !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Broadcast after a failed publish = %v, want ErrBrokerUnavailable and ErrNotConnected", err)
	}
	local.Expect(t, "reported")
	logs0.Await(t, slog.LevelWarn, "natsbroker: NATS connection lost")
	logs1.Await(t, slog.LevelWarn, "natsbroker: NATS connection lost")
	// Joining a room not yet subscribed still works during the outage.
	late := n1.Dial(t, "late", "late-room")

	restarted := time.Now()
	startNATSServer(t, server.port) // killed at cleanup
	accepting := time.Since(restarted)

	// Broadcast every few milliseconds until one crosses: the time from the
	// restart to that delivery is the window in which broadcasts are lost.
	first := remote.Probe(t, 2*time.Millisecond, func(seq int) {
		_ = n0.Manager.Broadcast(context.Background(), "lobby", wsroom.Text(fmt.Sprintf("after %d", seq)))
	})
	t.Logf("loss window: %v from restart to first cross-node delivery (server accepting after %v)", time.Since(restarted), accepting)
	var last int
	if _, err := fmt.Sscanf(first, "after %d", &last); err != nil {
		t.Fatalf("first message after restart: %q", first)
	}

	// Delivery stays in order from here on.
	awaitPublished(t, n0, 2) // the Publish that carried the first to cross
	expectInOrderUntilResumed(t, n0, remote, last)
	n0.Broadcast(t, "late-room", "to the late joiner")
	late.Expect(t, "to the late joiner")

	for _, c := range []*nodetest.Client{local, remote, late} {
		if !c.Connected() {
			t.Fatalf("%s's WebSocket closed during the outage", c.ID)
		}
	}
	for _, n := range []*nodetest.Node{n0, n1} {
		if s := brokerOf(n).Stats(); s.Reconnects != 1 || !s.Connected {
			t.Errorf("%s: %+v, want one reconnect", n.Name, s)
		}
	}
	logs0.Await(t, slog.LevelInfo, "natsbroker: NATS connection restored")
	logs1.Await(t, slog.LevelInfo, "natsbroker: NATS connection restored")
}

// TestPausedServerIsFoundWithin5s pauses (SIGSTOP) the lone NATS server of
// two nodes: their connections stay open, and the kernel even takes what
// they write, but nothing answers, as with a half-open connection. Both
// must find the connection dead within 5 s; Publish must then fail after
// its short grace while nats.go tries the paused server again; and both must come back
// once the server resumes (SIGCONT). A broadcast written to the paused
// server reaches the other node late or never, but never after a later one.
func TestPausedServerIsFoundWithin5s(t *testing.T) {
	server := startNATSServer(t, "")
	n0, n1, logs0, logs1, local, remote := lobbyOnTwoNodes(t, server)

	paused := time.Now()
	server.pause(t)
	n0.Broadcast(t, "lobby", "during") // written to the paused server's socket
	local.Expect(t, "during")
	var found []time.Duration
	for _, n := range []*nodetest.Node{n0, n1} {
		nodetest.WaitFor(t, n.Name+" to find the paused server dead", func() bool { return !brokerOf(n).Stats().Connected })
		found = append(found, time.Since(paused))
	}
	for i, d := range found {
		if d > 5*time.Second {
			t.Errorf("n%d found the paused server dead after %v, want within 5s", i, d)
		}
	}
	logs0.Await(t, slog.LevelWarn, "natsbroker: NATS connection lost")
	logs1.Await(t, slog.LevelWarn, "natsbroker: NATS connection lost")

	// While the server stays paused, nats.go keeps trying it, and each
	// attempt holds the connection's lock until nats.Timeout (2 s here)
	// ends it: Publish must still fail once its reconnectGrace is over.
	// 2.5 s covers an attempt.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); <-pace.C {
		start := time.Now()
		err := brokerOf(n0).Publish(context.Background(), one("lobby", "while paused"))
		if took := time.Since(start); !errors.Is(err, ErrNotConnected) || took > reconnectGrace+200*time.Millisecond {
			t.Fatalf("Publish while the server is paused = %v after %v, want ErrNotConnected after %v", err, took, reconnectGrace)
		}
	}

	resumed := time.Now()
	server.resume(t)
	probes := 0
	probe := func(int) {
		probes++
		_ = n0.Manager.Broadcast(context.Background(), "lobby", wsroom.Text(fmt.Sprintf("after %d", probes)))
	}
	first := remote.Probe(t, 2*time.Millisecond, probe)
	if first == "during" {
		first = remote.Probe(t, 2*time.Millisecond, probe) // delivered late, in order
	}
	window := time.Since(resumed)
	var last int
	if _, err := fmt.Sscanf(first, "after %d", &last); err != nil {
		t.Fatalf("first message after the server resumed: %q", first)
	}
	t.Logf("paused server found dead after %v (n0) and %v (n1); broadcasts cross again %v after it resumed",
		found[0].Round(time.Millisecond), found[1].Round(time.Millisecond), window.Round(time.Millisecond))

	awaitPublished(t, n0, 2) // the Publish that carried the first to cross
	expectInOrderUntilResumed(t, n0, remote, last)
	for _, n := range []*nodetest.Node{n0, n1} {
		// nats.go counts as a reconnection each attempt that opened a TCP
		// connection, even one the paused server never answered.
		if s := brokerOf(n).Stats(); s.Reconnects == 0 || !s.Connected {
			t.Errorf("%s: %+v, want connected again", n.Name, s)
		}
	}
	if !local.Connected() || !remote.Connected() {
		t.Fatal("a WebSocket closed while the server was paused")
	}
	logs0.Await(t, slog.LevelInfo, "natsbroker: NATS connection restored")
	logs1.Await(t, slog.LevelInfo, "natsbroker: NATS connection restored")
}

// awaitPublished waits until n's broker has taken count of its broadcasts.
// A broadcast can reach another node before the Publish that carried it
// returns, and until then the manager still reports the failure of the
// Publish before.
func awaitPublished(t *testing.T, n *nodetest.Node, count uint64) {
	t.Helper()
	nodetest.WaitFor(t, fmt.Sprintf("%s to have %d broadcasts published", n.Name, count), func() bool {
		return n.Manager.Stats().BrokerPublished >= count
	})
}

// lobbyOnTwoNodes starts two nodes on server, each with a member of the
// room lobby (local on n0, remote on n1) and its broker's logs, and checks
// that a broadcast crosses from n0 to n1 before the test breaks anything.
func lobbyOnTwoNodes(t *testing.T, server *natsServer) (n0, n1 *nodetest.Node, logs0, logs1 *nodetest.Logs, local, remote *nodetest.Client) {
	t.Helper()
	prefix := testPrefix()
	logs0, logs1 = new(nodetest.Logs), new(nodetest.Logs)
	n0 = nodetest.Start(t, "n0", newBroker(t, connect(t, server.url(), ClientOptions()...), prefix, WithLogger(logs0.Logger())))
	n1 = nodetest.Start(t, "n1", newBroker(t, connect(t, server.url(), ClientOptions()...), prefix, WithLogger(logs1.Logger())))
	local = n0.Dial(t, "local", "lobby")
	remote = n1.Dial(t, "remote", "lobby")
	n0.Broadcast(t, "lobby", "before")
	local.Expect(t, "before")
	remote.Expect(t, "before")
	awaitPublished(t, n0, 1)
	return n0, n1, logs0, logs1, local, remote
}

// expectInOrderUntilResumed broadcasts "resumed" from n and checks that
// remote gets the probes still on their way, "after N" with N above last
// and rising, then "resumed".
func expectInOrderUntilResumed(t *testing.T, n *nodetest.Node, remote *nodetest.Client, last int) {
	t.Helper()
	n.Broadcast(t, "lobby", "resumed")
	for _, m := range remote.Until(t, "resumed") {
		var seq int
		if _, err := fmt.Sscanf(m, "after %d", &seq); err != nil || seq <= last {
			t.Fatalf("remote got %q after \"after %d\"", m, last)
		}
		last = seq
	}
}
