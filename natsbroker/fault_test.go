package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
)

const natsServerPath = "/usr/sbin/nats-server"

// natsServer is a nats-server process this test started.
type natsServer struct {
	port string
	cmd  *exec.Cmd
}

// startNATSServer starts nats-server on 127.0.0.1:port ("" for a free
// port) and waits until it accepts connections.
func startNATSServer(t *testing.T, port string) *natsServer {
	t.Helper()
	if _, err := os.Stat(natsServerPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (CI=true): %v", natsServerPath, err)
		}
		t.Skipf("%s missing; install nats-server to run this test", natsServerPath)
	}
	if port == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(l.Addr().String())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := &natsServer{port: port, cmd: exec.Command(natsServerPath, "-a", "127.0.0.1", "-p", port)}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	waitFor(t, 5*time.Second, "nats-server to accept connections", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return s
}

func (s *natsServer) url() string { return "nats://127.0.0.1:" + s.port }

// kill stops the server by its PID and reaps it; it is idempotent.
func (s *natsServer) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// TestBroadcastsResumeAfterServerRestart kills the NATS server under a
// two-node cluster and starts it again on the same port. While it is down,
// Broadcast reports the outage, local members still get local broadcasts
// and WebSocket clients stay connected; after the restart, broadcasts cross
// nodes again with no call from the user, including in a room first joined
// during the outage.
func TestBroadcastsResumeAfterServerRestart(t *testing.T) {
	server := startNATSServer(t, "")
	prefix := testPrefix()
	reconnect := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(0, 0)}
	n0 := newNode(t, server.url(), prefix, reconnect...)
	n1 := newNode(t, server.url(), prefix, reconnect...)
	local := n0.dial(t, "local", "lobby")
	remote := n1.dial(t, "remote", "lobby")
	broadcast(t, n0, "lobby", "before")
	local.expect(t, "before")
	remote.expect(t, "before")

	server.kill()
	for i, n := range []*node{n0, n1} {
		waitFor(t, 5*time.Second, fmt.Sprintf("node %d to see the outage", i), func() bool { return !n.broker.Stats().Connected })
	}
	err := n0.m.Broadcast(context.Background(), "lobby", wsroom.Text("during"))
	if !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Broadcast while NATS is down = %v, want ErrNotConnected", err)
	}
	local.expect(t, "during")
	if s := n0.m.Stats(); s.BrokerPublishErrors != 1 {
		t.Fatalf("BrokerPublishErrors = %d, want 1", s.BrokerPublishErrors)
	}
	// Joining a room not yet subscribed still works during the outage.
	late := n1.dial(t, "late", "late-room")

	restarted := time.Now()
	startNATSServer(t, server.port) // killed at cleanup
	accepting := time.Since(restarted)

	// Broadcast every few milliseconds until one crosses: the time from the
	// restart to that delivery is the window in which broadcasts are lost.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var first string
	for seq := 0; first == ""; seq++ {
		_ = n0.m.Broadcast(ctx, "lobby", wsroom.Text(fmt.Sprintf("after %d", seq)))
		select {
		case first = <-remote.msgs:
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no broadcast crossed nodes within 10 s of the restart")
		}
	}
	window := time.Since(restarted)
	t.Logf("loss window: %v from restart to first cross-node delivery (server accepting after %v)", window, accepting)
	var last int
	if _, err := fmt.Sscanf(first, "after %d", &last); err != nil {
		t.Fatalf("first message after restart: %q", first)
	}

	// Delivery stays in order from here on.
	broadcast(t, n0, "lobby", "resumed")
	for m := remote.next(t); m != "resumed"; m = remote.next(t) {
		var seq int
		if _, err := fmt.Sscanf(m, "after %d", &seq); err != nil || seq <= last {
			t.Fatalf("remote got %q after \"after %d\"", m, last)
		}
		last = seq
	}
	broadcast(t, n0, "late-room", "to the late joiner")
	late.expect(t, "to the late joiner")

	for _, c := range []*client{local, remote, late} {
		select {
		case <-c.done:
			t.Fatalf("%s's WebSocket closed during the outage", c.id)
		default:
		}
	}
	for i, n := range []*node{n0, n1} {
		if s := n.broker.Stats(); s.Reconnects != 1 || !s.Connected {
			t.Errorf("node %d: %+v, want one reconnect", i, s)
		}
	}
}
