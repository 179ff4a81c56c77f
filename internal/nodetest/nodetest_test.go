package nodetest

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster starts size nodes sharing one memory broker.
func cluster(t *testing.T, size int) []*Node {
	broker := wsroom.NewMemoryBroker()
	nodes := make([]*Node, size)
	for i := range nodes {
		nodes[i] = Start(t, fmt.Sprintf("node%d", i), broker)
	}
	return nodes
}

func TestChecksPassOverTheMemoryBroker(t *testing.T) {
	t.Run("order", func(t *testing.T) { CheckOrder(t, cluster(t, 3), 2, 100) })
	t.Run("except", func(t *testing.T) { CheckExcept(t, cluster(t, 3)) })
	t.Run("join", func(t *testing.T) { CheckJoinThenBroadcast(t, cluster(t, 2), 20) })
}

// fatal records the first failure of a helper run by failure.
type fatal struct {
	testing.TB
	msg    string
	errMsg string
}

func (f *fatal) Errorf(format string, args ...any) {
	f.errMsg = fmt.Sprintf(format, args...)
}

func (f *fatal) Helper() {}

func (f *fatal) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatal) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// failure runs fn on a goroutine of its own, as t.Fatal needs, and returns
// the message it failed with, or "" if it did not fail.
func failure(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatal{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestNextReportsWhatCameBeforeTheConnectionEnded(t *testing.T) {
	n := cluster(t, 1)[0]
	c := n.Dial(t, "ann", "lobby")
	n.Broadcast(t, "lobby", "one")
	n.Broadcast(t, "lobby", "two")
	c.Expect(t, "one")
	if err := n.Manager.Disconnect(n.Conn(t, "ann"), websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	c.Expect(t, "two") // queued before the close, so still written
	msg := failure(t, func(tb testing.TB) { c.Next(tb) })
	for _, want := range []string{"client ann", "connection ended", "close status 1000", `"one" "two"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not mention %s", msg, want)
		}
	}
	if c.Connected() {
		t.Error("Connected after the server closed the connection")
	}
}

func TestExpectReportsTheUnexpectedMessage(t *testing.T) {
	n := cluster(t, 1)[0]
	c := n.Dial(t, "ann", "lobby")
	n.Broadcast(t, "lobby", "one")
	n.Broadcast(t, "lobby", "two")
	msg := failure(t, func(tb testing.TB) { c.Expect(tb, "one", "three") })
	if want := `client ann: got "two", want "three"`; !strings.Contains(msg, want) {
		t.Errorf("failure %q, want it to say %s", msg, want)
	}
}

func TestDialReportsAJoinThatFailed(t *testing.T) {
	n := cluster(t, 1)[0]
	msg := failure(t, func(tb testing.TB) { n.Dial(tb, "ann", "lobby", "") })
	if want := `node0: connection "ann": join room "": wsroom: invalid room name`; !strings.Contains(msg, want) {
		t.Errorf("failure %q, want it to say %s", msg, want)
	}
	msg = failure(t, func(tb testing.TB) { n.Conn(tb, "ann") })
	if want := `node0 has no connection "ann"`; !strings.Contains(msg, want) {
		t.Errorf("failure %q, want it to say %s", msg, want)
	}
}

func TestUntilReturnsWhatCameBeforeTheMarker(t *testing.T) {
	n := cluster(t, 1)[0]
	c := n.Dial(t, "ann", "lobby")
	for _, m := range []string{"a", "b", "end", "after"} {
		n.Broadcast(t, "lobby", m)
	}
	if got := c.Until(t, "end"); strings.Join(got, ",") != "a,b" {
		t.Fatalf("Until returned %q, want a and b", got)
	}
	c.Expect(t, "after")
}

func TestProbeSendsUntilSomethingArrives(t *testing.T) {
	n := cluster(t, 1)[0]
	c := n.Dial(t, "ann", "lobby")
	got := c.Probe(t, pollInterval, func(seq int) {
		if seq == 3 {
			n.Broadcast(t, "lobby", "probe 3")
		}
	})
	if got != "probe 3" {
		t.Fatalf("Probe returned %q", got)
	}
}

func TestLogsKeepLevelAndMessage(t *testing.T) {
	var logs Logs
	log := logs.Logger().With("key", "value").WithGroup("g")
	go log.Info("restored", "n", 1)
	logs.Await(t, slog.LevelInfo, "restored")
	log.Debug("pending")
	if got := strings.Join(logs.Records(), ","); got != "INFO restored,DEBUG pending" {
		t.Fatalf("records %q", got)
	}
}

type closer struct{ err error }

func (c *closer) Close() error { return c.err }

func TestOpenReportsOpenAndCloseErrors(t *testing.T) {
	msg := failure(t, func(tb testing.TB) {
		Open(tb, func() (*closer, error) { return nil, errors.New("refused") })
	})
	if msg != "refused" {
		t.Errorf("failure %q, want refused", msg)
	}
	var closeErr string
	t.Run("close", func(t *testing.T) {
		f := &fatal{TB: t}
		t.Cleanup(func() { closeErr = f.errMsg }) // runs after Open's
		Open(f, func() (*closer, error) { return &closer{err: errors.New("stuck")}, nil })
	})
	if closeErr != "close *nodetest.closer: stuck" {
		t.Errorf("Close error reported as %q", closeErr)
	}
}
