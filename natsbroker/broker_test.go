package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
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
	if err := b.Publish(context.Background(), one(room, payload)); err != nil {
		t.Fatal(err)
	}
}

// one is a batch of one publication.
func one(room, payload string) []wsroom.Publication {
	return []wsroom.Publication{{Room: room, Payload: []byte(payload)}}
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
	if b, err := New(nc, WithPrefix("my-app.rooms")); err != nil {
		t.Errorf("valid prefix refused: %v", err)
	} else if err := b.Close(); err != nil {
		t.Error(err)
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
	if err := b.Publish(context.Background(), one("lobby", "")); !errors.Is(err, wsroom.ErrClosed) {
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
	if err := b.Publish(context.Background(), one("lobby", "x")); !errors.Is(err, ErrNotConnected) {
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
	if err := b.Publish(context.Background(), one("lobby", "")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish = %v, want ErrNotConnected", err)
	}
	nc.Close()
	logs.Await(t, slog.LevelWarn, "natsbroker: NATS connection closed; publishes fail from now on")
}

// TestBatchReachesEveryRoomInOrder publishes one batch that interleaves
// five rooms: each room's subscription gets its own publications in batch
// order.
func TestBatchReachesEveryRoomInOrder(t *testing.T) {
	const rooms, perRoom = 5, 200
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	b := newBroker(t, connect(t, sharedURL), prefix)
	got := make([]collector, rooms)
	for r := range got {
		got[r] = make(collector, perRoom)
		defer subscribe(t, a, "room-"+strconv.Itoa(r), got[r].deliver).Close()
	}
	var batch []wsroom.Publication
	for i := range perRoom {
		for r := range rooms {
			batch = append(batch, wsroom.Publication{Room: "room-" + strconv.Itoa(r), Payload: []byte(strconv.Itoa(i))})
		}
	}
	if err := b.Publish(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	for r := range rooms {
		for i := range perRoom {
			got[r].expect(t, strconv.Itoa(i))
		}
	}
	if s := b.Stats(); s.Published != rooms*perRoom || s.PublishErrors != 0 {
		t.Fatalf("stats of the publisher: %+v", s)
	}
}

// TestBatchStopsAtTheFirstPublicationRefused publishes a batch whose second
// publication is over the server's payload limit: the first is delivered,
// the third is never sent, and the error names the room.
func TestBatchStopsAtTheFirstPublicationRefused(t *testing.T) {
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	nc := connect(t, sharedURL)
	b := newBroker(t, nc, prefix)
	got := make(collector, 4)
	defer subscribe(t, a, "lobby", got.deliver).Close()
	huge := make([]byte, nc.MaxPayload()+1)
	err := b.Publish(context.Background(), []wsroom.Publication{
		{Room: "lobby", Payload: []byte("first")},
		{Room: "big", Payload: huge},
		{Room: "lobby", Payload: []byte("third")},
	})
	if !errors.Is(err, nats.ErrMaxPayload) || !strings.Contains(err.Error(), `room "big"`) {
		t.Fatalf("Publish = %v, want ErrMaxPayload for room \"big\"", err)
	}
	publish(t, b, "lobby", "next")
	got.expect(t, "first")
	got.expect(t, "next")
	if s := b.Stats(); s.Published != 1 || s.PublishErrors != 3 {
		t.Fatalf("Published = %d, PublishErrors = %d; want 1 and 3", s.Published, s.PublishErrors)
	}
}

func TestPublishSendsNothingOnceItsContextEnds(t *testing.T) {
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	b := newBroker(t, connect(t, sharedURL), prefix)
	got := make(collector, 4)
	defer subscribe(t, a, "lobby", got.deliver).Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Publish(ctx, one("lobby", "late")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v, want context.Canceled", err)
	}
	publish(t, b, "lobby", "next")
	got.expect(t, "next")
	if s := b.Stats(); s.Published != 1 || s.PublishErrors != 1 {
		t.Fatalf("Published = %d, PublishErrors = %d; want 1 and 1", s.Published, s.PublishErrors)
	}
}

// TestMessagesOlderThanOneDeliveredAreDropped publishes by hand what a
// broker would, sequence numbers included: a message of a publisher older
// than one of its messages already delivered is dropped and counted;
// other publishers', and messages without a valid sequence number, are
// delivered.
func TestMessagesOlderThanOneDeliveredAreDropped(t *testing.T) {
	prefix := testPrefix()
	a := newBroker(t, connect(t, sharedURL), prefix)
	got := make(collector, 16)
	defer subscribe(t, a, "lobby", got.deliver).Close()
	raw := connect(t, sharedURL)
	for _, m := range []struct{ seq, payload string }{
		{"p.2", "two"},
		{"p.1", "one: older, dropped"},
		{"p.2", "two again: dropped"},
		{"q.1", "another publisher"},
		{"", "no sequence number"},
		{"p.x", "not a number"},
		{"p.3", "three"},
	} {
		msg := nats.NewMsg(a.Subject("lobby"))
		msg.Data = []byte(m.payload)
		if m.seq != "" {
			msg.Header.Set(seqHeader, m.seq)
		}
		if err := raw.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"two", "another publisher", "no sequence number", "not a number", "three"} {
		got.expect(t, want)
	}
	if s := a.Stats(); s.Received != 7 || s.OutOfOrder != 2 {
		t.Fatalf("Received = %d, OutOfOrder = %d; want 7 and 2", s.Received, s.OutOfOrder)
	}
}

// TestPublicationsCarryTheBrokersSequenceNumber reads a broker's
// publications with a raw subscriber: each carries the broker's ID and a
// number that counts its publications from 1, across rooms and batches.
func TestPublicationsCarryTheBrokersSequenceNumber(t *testing.T) {
	b := newBroker(t, connect(t, sharedURL), testPrefix())
	raw := connect(t, sharedURL)
	msgs := make(chan *nats.Msg, 8)
	sub, err := raw.ChanSubscribe(b.cfg.prefix+".*", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a", "1")
	if err := b.Publish(context.Background(), []wsroom.Publication{{Room: "b", Payload: []byte("2")}, {Room: "a", Payload: []byte("3")}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		select {
		case m := <-msgs:
			if want := b.id + "." + strconv.Itoa(i); m.Header.Get(seqHeader) != want || string(m.Data) != strconv.Itoa(i) {
				t.Fatalf("message %q with %s %q, want %q", m.Data, seqHeader, m.Header.Get(seqHeader), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for message %d", i)
		}
	}
	if len(b.id) != 16 || strings.Contains(b.id, ".") {
		t.Fatalf("broker ID %q, want 16 hex digits", b.id)
	}
}

// TestNewWarnsOfClientOptionsThatFallShort checks the warnings of New for
// nats.go's defaults and a connection that never reconnects, and that
// ClientOptions draws none.
func TestNewWarnsOfClientOptionsThatFallShort(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []nats.Option
		want []string
	}{
		{"client options", ClientOptions(), nil},
		{"nats.go defaults", nil, []string{
			"WARN natsbroker: nats.go gives up after 60 reconnection attempts per server and closes the connection for good; use nats.MaxReconnects(-1)",
			"WARN natsbroker: a server that stops answering is found only after up to 6m0s (nats.PingInterval 2m0s, nats.MaxPingsOutstanding 2); use nats.PingInterval(time.Second) and nats.MaxPingsOutstanding(2)",
			"WARN natsbroker: a write to a server that stops answering blocks Publish, and the finding of the dead server, for up to 1m0s (nats.FlusherTimeout); use nats.FlusherTimeout(2 * time.Second)",
		}},
		{"no reconnect, no pings, no write timeout", append(ClientOptions(), nats.NoReconnect(), nats.PingInterval(0), nats.FlusherTimeout(0)), []string{
			"WARN natsbroker: reconnection is off (nats.NoReconnect): the first outage closes the connection for good; use natsbroker.ClientOptions",
			"WARN natsbroker: pings are off (nats.PingInterval): a server that stops answering is never found; use nats.PingInterval(time.Second)",
			"WARN natsbroker: writes have no timeout (nats.FlusherTimeout): a write to a server that stops answering blocks Publish until the connection is found dead; use nats.FlusherTimeout(2 * time.Second)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs nodetest.Logs
			newBroker(t, connect(t, sharedURL, tc.opts...), testPrefix(), WithLogger(logs.Logger()))
			if got := logs.Records(); !slices.Equal(got, tc.want) {
				t.Fatalf("logged %q, want %q", got, tc.want)
			}
		})
	}
}
