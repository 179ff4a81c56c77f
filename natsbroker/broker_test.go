package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
	"go.uber.org/goleak"
)

// collector receives a subscription's payloads.
type collector chan []byte

func (c collector) deliver(p []byte) { c <- append([]byte(nil), p...) }

func (c collector) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-c:
		if string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
	}
}

func subscribe(t *testing.T, b *Broker, room string, deliver func([]byte)) wsroom.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx, room, deliver)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func publish(t *testing.T, b *Broker, room, payload string) {
	t.Helper()
	if err := b.Publish(context.Background(), room, []byte(payload)); err != nil {
		t.Fatal(err)
	}
}

func TestSubscribeDeliversPublishesFromEveryNode(t *testing.T) {
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	b := newBroker(t, connect(t, sharedURL), prefix)
	got := make(collector, 4)
	sub := subscribe(t, a, "lobby", got.deliver)

	publish(t, b, "lobby", "from b")
	got.expect(t, "from b")
	publish(t, a, "lobby", "from a") // a node receives its own publishes
	got.expect(t, "from a")

	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Subscriptions != 0 || s.Received != 2 || s.Published != 1 || !s.Connected {
		t.Fatalf("stats of a: %+v", s)
	}
}

// TestPublishAfterSubscribeReturnsIsNeverMissed pins the round trip in
// Subscribe: another connection's publish, made as soon as Subscribe
// returns, must arrive.
func TestPublishAfterSubscribeReturnsIsNeverMissed(t *testing.T) {
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	b := newBroker(t, connect(t, sharedURL), prefix)
	for i := range 100 {
		room := "room-" + strconv.Itoa(i)
		got := make(collector, 1)
		sub := subscribe(t, a, room, got.deliver)
		publish(t, b, room, room)
		got.expect(t, room)
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoomSubscriptionIsSharedUntilItsLastClose(t *testing.T) {
	prefix := testPrefix()
	nc := connect(t, sharedURL)
	a := newBroker(t, nc, prefix)
	b := newBroker(t, connect(t, sharedURL), prefix)
	first, second := make(collector, 4), make(collector, 4)
	sub1 := subscribe(t, a, "lobby", first.deliver)
	sub2 := subscribe(t, a, "lobby", second.deliver)
	if n := a.Stats().Subscriptions; n != 1 || nc.NumSubscriptions() != 1 {
		t.Fatalf("two subscriptions to one room: broker has %d, connection %d; want 1 and 1", n, nc.NumSubscriptions())
	}
	publish(t, b, "lobby", "both")
	first.expect(t, "both")
	second.expect(t, "both")

	// The manager opens a new subscription before closing the old one.
	if err := sub1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := a.Stats().Subscriptions; n != 1 {
		t.Fatalf("after one Close: %d room subscriptions, want 1", n)
	}
	publish(t, b, "lobby", "second only")
	second.expect(t, "second only")
	select {
	case p := <-first:
		t.Fatalf("closed subscription got %q", p)
	default:
	}

	if err := sub2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := a.Stats().Subscriptions; n != 0 || nc.NumSubscriptions() != 0 {
		t.Fatalf("after the last Close: broker has %d, connection %d; want 0 and 0", n, nc.NumSubscriptions())
	}

	// The room can be subscribed again.
	third := make(collector, 1)
	sub3 := subscribe(t, a, "lobby", third.deliver)
	defer sub3.Close()
	publish(t, b, "lobby", "again")
	third.expect(t, "again")
}

func TestTenThousandPublishesArriveInOrder(t *testing.T) {
	const n = 10_000
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	b := newBroker(t, connect(t, sharedURL), prefix)
	done := make(chan error, 1)
	next := 0
	sub := subscribe(t, a, "ordered", func(p []byte) {
		got, err := strconv.Atoi(string(p))
		if err == nil && got != next {
			err = fmt.Errorf("got %d, want %d", got, next)
		}
		next++
		if err != nil || next == n {
			select {
			case done <- err:
			default:
			}
		}
	})
	defer sub.Close()
	for i := range n {
		publish(t, b, "ordered", strconv.Itoa(i))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out after %d of %d messages", a.Stats().Received, n)
	}
}

func TestRoomNamesNeverCollideOrMatchAsWildcards(t *testing.T) {
	rooms := []string{"a", "a.b", "a.", ".a", "a..b", "*", "a.*", ">", "a.>", "*.>",
		"with space", " ", "tab\tnewline\n", "ünïcødé 🎉", "大厅", "a-b_c", "YQ", "\x00"}
	prefix := testPrefix()
	nc, ncB := connect(t, sharedURL), connect(t, sharedURL)
	a := newBroker(t, nc, prefix)
	b := newBroker(t, ncB, prefix)

	// A raw subscriber on the prefix's wildcards sees every room as one
	// token, and none as more.
	oneToken := make(chan *nats.Msg, 4*len(rooms))
	moreTokens := make(chan *nats.Msg, len(rooms))
	for subject, ch := range map[string]chan *nats.Msg{prefix + ".*": oneToken, prefix + ".*.>": moreTokens} {
		raw, err := nc.ChanSubscribe(subject, ch)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Unsubscribe()
	}

	got := make(map[string]collector, len(rooms))
	for _, room := range rooms {
		if s := a.Subject(room); s != prefix+"."+roomToken(room) {
			t.Fatalf("Subject(%q) = %q", room, s)
		}
		for _, r := range roomToken(room) {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("token of %q holds %q", room, r)
			}
		}
		got[room] = make(collector, len(rooms))
		defer subscribe(t, a, room, got[room].deliver).Close()
	}
	for _, room := range rooms {
		publish(t, b, room, room)
	}
	for _, room := range rooms {
		got[room].expect(t, room)
	}
	// Each publish reached one subscription; a marker published last on
	// every room shows nothing else is still on its way.
	for _, room := range rooms {
		publish(t, b, room, "end")
		got[room].expect(t, "end")
	}
	// The raw subscribers count what came before a sentinel that each
	// matches, published after everything else on the same connection.
	for subject, want := range map[string]int{prefix + ".zz": 2 * len(rooms), prefix + ".zz.zz": 0} {
		if err := ncB.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
		ch := oneToken
		if want == 0 {
			ch = moreTokens
		}
		for n := 0; ; n++ {
			var m *nats.Msg
			select {
			case m = <-ch:
			case <-time.After(5 * time.Second):
				t.Fatalf("timed out waiting for %s", subject)
			}
			if m.Subject == subject {
				if n != want {
					t.Errorf("%d messages before %s, want %d", n, subject, want)
				}
				break
			}
		}
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	if _, err := New(nil); !errors.Is(err, wsroom.ErrInvalidOption) {
		t.Errorf("New(nil) = %v, want ErrInvalidOption", err)
	}
	for name, opt := range map[string]Option{
		"empty prefix":       WithPrefix(""),
		"leading dot":        WithPrefix(".app"),
		"trailing dot":       WithPrefix("app."),
		"empty token":        WithPrefix("a..b"),
		"star":               WithPrefix("app.*"),
		"gt":                 WithPrefix("app.>"),
		"space":              WithPrefix("my app"),
		"zero pending msgs":  WithPendingLimits(0, 1),
		"zero pending bytes": WithPendingLimits(1, 0),
		"nil logger":         WithLogger(nil),
		"nil":                nil,
	} {
		t.Run(name, func(t *testing.T) {
			nc := connect(t, sharedURL)
			if _, err := New(nc, opt); !errors.Is(err, wsroom.ErrInvalidOption) {
				t.Errorf("New = %v, want ErrInvalidOption", err)
			}
		})
	}
	nc := connect(t, sharedURL)
	if _, err := New(nc, WithPrefix("my-app.rooms")); err != nil {
		t.Errorf("valid prefix refused: %v", err)
	}
	nc.Close()
	if _, err := New(nc); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("New on a closed connection = %v, want ErrConnectionClosed", err)
	}
}

func TestCloseUnsubscribesAndRefusesFurtherUse(t *testing.T) {
	nc := connect(t, sharedURL)
	b, err := New(nc, WithPrefix(testPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, b, "lobby", func([]byte) {})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if nc.NumSubscriptions() != 0 || b.Stats().Subscriptions != 0 {
		t.Fatalf("after Close: %d NATS subscriptions, %d rooms", nc.NumSubscriptions(), b.Stats().Subscriptions)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("subscription Close after broker Close: %v", err)
	}
	if err := b.Publish(context.Background(), "lobby", nil); !errors.Is(err, wsroom.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(context.Background(), "lobby", func([]byte) {}); !errors.Is(err, wsroom.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if !nc.IsConnected() {
		t.Fatal("Close closed the caller's NATS connection")
	}
	if s := b.Stats(); s.PublishErrors != 1 {
		t.Fatalf("PublishErrors = %d, want 1", s.PublishErrors)
	}
}

func TestPublishAndSubscribeFailOnClosedConnection(t *testing.T) {
	nc := connect(t, sharedURL)
	b := newBroker(t, nc, testPrefix())
	sub := subscribe(t, b, "lobby", func([]byte) {})
	nc.Close()
	if err := b.Publish(context.Background(), "lobby", []byte("x")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish = %v, want ErrNotConnected", err)
	}
	if _, err := b.Subscribe(context.Background(), "other", func([]byte) {}); err == nil {
		t.Fatal("Subscribe on a closed connection succeeded")
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("subscription Close on a closed connection: %v", err)
	}
}

func TestSlowConsumerDropsAreCounted(t *testing.T) {
	prefix := testPrefix()
	// The connection's own error handler still hears of the slow consumer.
	reported := make(chan error, 1)
	nc := connect(t, sharedURL, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case reported <- err:
		default:
		}
	}))
	a := newBroker(t, nc, prefix, WithPendingLimits(10, 1<<20))
	b := newBroker(t, connect(t, sharedURL), prefix)
	release := make(chan struct{})
	sub := subscribe(t, a, "slow", func([]byte) { <-release })
	for range 200 {
		publish(t, b, "slow", "x")
	}
	nodetest.WaitFor(t, "dropped messages", func() bool { return a.Stats().Dropped > 0 })
	close(release)
	select {
	case err := <-reported:
		if !errors.Is(err, nats.ErrSlowConsumer) {
			t.Fatalf("error handler got %v, want ErrSlowConsumer", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection's error handler was not called")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Dropped == 0 || s.Dropped+s.Received > 200 {
		t.Fatalf("after Close: %+v", s)
	}
}

// TestCloseStopsEveryGoroutine checks that a broker with many rooms and a
// logger leaves nothing running once it and its connection are closed.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	nc, err := nats.Connect(sharedURL, nats.Timeout(2*time.Second))
	if err != nil {
		connect(t, sharedURL) // skips or fails as configured
	}
	b, err := New(nc, WithPrefix(testPrefix()), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		subscribe(t, b, strconv.Itoa(i), func([]byte) {})
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	goleak.VerifyNone(t)
}

// TestLoggerReportsAServerThatIsAway starts a broker on a connection that
// has never reached its server: it says so, joins still work and are
// logged as pending, and closing the connection is reported.
func TestLoggerReportsAServerThatIsAway(t *testing.T) {
	nc, err := nats.Connect("nats://127.0.0.1:1", nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var logs nodetest.Logs
	b := newBroker(t, nc, testPrefix(), WithLogger(logs.Logger()))
	logs.Await(t, slog.LevelWarn, "natsbroker: not connected to NATS yet")
	sub := subscribe(t, b, "lobby", func([]byte) {})
	defer sub.Close()
	logs.Await(t, slog.LevelDebug, "natsbroker: not connected; subscription pending")
	if err := b.Publish(context.Background(), "lobby", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish = %v, want ErrNotConnected", err)
	}
	nc.Close()
	logs.Await(t, slog.LevelWarn, "natsbroker: NATS connection closed; publishes fail from now on")
}
