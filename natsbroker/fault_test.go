package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
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
	nodetest.WaitFor(t, "nats-server to accept connections", func() bool {
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
// during the outage. Each broker logs the loss and the recovery.
func TestBroadcastsResumeAfterServerRestart(t *testing.T) {
	server := startNATSServer(t, "")
	prefix := testPrefix()
	reconnect := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(0, 0)}
	var logs0, logs1 nodetest.Logs
	n0 := nodetest.Start(t, "n0", newBroker(t, connect(t, server.url(), reconnect...), prefix, WithLogger(logs0.Logger())))
	n1 := nodetest.Start(t, "n1", newBroker(t, connect(t, server.url(), reconnect...), prefix, WithLogger(logs1.Logger())))
	local := n0.Dial(t, "local", "lobby")
	remote := n1.Dial(t, "remote", "lobby")
	n0.Broadcast(t, "lobby", "before")
	local.Expect(t, "before")
	remote.Expect(t, "before")

	server.kill()
	for _, n := range []*nodetest.Node{n0, n1} {
		nodetest.WaitFor(t, n.Name+" to see the outage", func() bool { return !brokerOf(n).Stats().Connected })
	}
	err := n0.Manager.Broadcast(context.Background(), "lobby", wsroom.Text("during"))
	if !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Broadcast while NATS is down = %v, want ErrNotConnected", err)
	}
	local.Expect(t, "during")
	if s := n0.Manager.Stats(); s.BrokerPublishErrors != 1 {
		t.Fatalf("BrokerPublishErrors = %d, want 1", s.BrokerPublishErrors)
	}
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
	n0.Broadcast(t, "lobby", "resumed")
	for _, m := range remote.Until(t, "resumed") {
		var seq int
		if _, err := fmt.Sscanf(m, "after %d", &seq); err != nil || seq <= last {
			t.Fatalf("remote got %q after \"after %d\"", m, last)
		}
		last = seq
	}
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
