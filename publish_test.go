package wsroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// Publishing to the broker: broadcasts never wait for it, and no broker
// call runs under a lock of the manager's.

// gateBroker is a memory broker whose Subscribe and Publish for chosen
// rooms wait until their gate opens, as a stalled broker would.
type gateBroker struct {
	Broker
	mu      sync.Mutex
	gates   map[string]chan struct{} // room → closed when its calls may go on
	calls   chan string              // "publish ROOM" or "subscribe ROOM", for each call that waits
	fail    error                    // what Publish returns, if set
	batches []int                    // the size of each Publish batch
}

func newGateBroker() *gateBroker {
	return &gateBroker{Broker: NewMemoryBroker(), gates: make(map[string]chan struct{}), calls: make(chan string, 64)}
}

// hold makes the broker's calls for room wait until the returned func is
// called.
func (b *gateBroker) hold(room string) (release func()) {
	gate := make(chan struct{})
	b.mu.Lock()
	b.gates[room] = gate
	b.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

func (b *gateBroker) wait(ctx context.Context, call, room string) error {
	b.mu.Lock()
	gate := b.gates[room]
	b.mu.Unlock()
	if gate == nil {
		return nil
	}
	b.calls <- call + " " + room
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *gateBroker) Subscribe(ctx context.Context, room string, deliver func([]byte)) (Subscription, error) {
	if err := b.wait(ctx, "subscribe", room); err != nil {
		return nil, err
	}
	return b.Broker.Subscribe(ctx, room, deliver)
}

func (b *gateBroker) Publish(ctx context.Context, batch []Publication) error {
	b.mu.Lock()
	b.batches = append(b.batches, len(batch))
	fail := b.fail
	b.mu.Unlock()
	for _, p := range batch {
		if err := b.wait(ctx, "publish", p.Room); err != nil {
			return err
		}
	}
	if fail != nil {
		return fail
	}
	return b.Broker.Publish(ctx, batch)
}

func (b *gateBroker) setFail(err error) {
	b.mu.Lock()
	b.fail = err
	b.mu.Unlock()
}

func TestStalledPublishDelaysNoLocalDelivery(t *testing.T) {
	const rooms = 200
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{opts: []Option{WithBroker(broker)}})
	stalledMember, _ := h.dial("room=stalled")
	stalledMember.start()
	var members []*client
	for i := range rooms {
		c, _ := h.dial(fmt.Sprintf("room=r%d", i))
		members = append(members, c.start())
	}
	release := broker.hold("stalled")
	defer release()

	ctx := ctxTimeout(t)
	if err := h.m.Broadcast(ctx, "stalled", Text("to the stalled room")); err != nil {
		t.Fatal(err)
	}
	select {
	case call := <-broker.calls:
		if call != "publish stalled" {
			t.Fatalf("broker call %q", call)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the publication never reached the broker")
	}
	// The broker now holds the publisher. The stalled room's own members
	// got their broadcast at once, and every other room goes on.
	if got := stalledMember.waitTexts(1); got[0] != "to the stalled room" {
		t.Fatalf("got %q", got)
	}
	for i, c := range members {
		start := time.Now()
		err := h.m.Broadcast(ctx, fmt.Sprintf("r%d", i), Text("hello"))
		if d := time.Since(start); err != nil || d > 150*time.Millisecond {
			t.Fatalf("broadcast to room %d: %v after %v, want nil within 150 ms", i, err, d)
		}
		c.waitTexts(1)
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Fatalf("room %d's member got its broadcast after %v, want within 200 ms", i, d)
		}
	}
}

func TestFullPublishQueueIsReportedAndCounted(t *testing.T) {
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{opts: []Option{WithBroker(broker), WithPublishQueue(4, DefaultPublishQueueBytes, time.Minute)}})
	member, _ := h.dial("room=r")
	member.start()
	release := broker.hold("r")
	defer release()
	ctx := ctxTimeout(t)
	if err := h.m.Broadcast(ctx, "r", Text("0")); err != nil {
		t.Fatal(err)
	}
	<-broker.calls // the publisher is stuck on the first broadcast
	for i := 1; i <= 4; i++ {
		if err := h.m.Broadcast(ctx, "r", Text(fmt.Sprint(i))); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
	}
	err := h.m.Broadcast(ctx, "r", Text("5"))
	if !errors.Is(err, ErrBrokerUnavailable) {
		t.Fatalf("broadcast to a full publish queue: %v, want ErrBrokerUnavailable", err)
	}
	// Local members got everything, the refused one included.
	if got := member.waitTexts(6); strings.Join(got, "") != "012345" {
		t.Fatalf("local member got %v", got)
	}
	if s := h.m.Stats(); s.BrokerQueueFull != 1 {
		t.Fatalf("BrokerQueueFull = %d, want 1", s.BrokerQueueFull)
	}
	release()
	eventually(t, "the queue is published", func() bool { return h.m.Stats().BrokerPublished == 5 })
}

// TestStalledBrokerHoldsAtMostThePublishQueuesBytes has a client flood
// its room with 32 KiB messages while the broker is stalled: the publish
// queue stops taking them at its byte bound, long before its count bound,
// and the local member still gets every message.
func TestStalledBrokerHoldsAtMostThePublishQueuesBytes(t *testing.T) {
	const (
		limit   = 1 << 20
		msgSize = 32 << 10
	)
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{
		opts: []Option{WithBroker(broker), WithPublishQueue(DefaultPublishQueue, limit, time.Minute)},
		onMessage: func(h *harness, c *Conn, msg Message) {
			_ = h.m.Broadcast(context.Background(), "r", msg) // refused ones are counted
		},
	})
	member, _ := h.dial("room=r")
	member.start()
	release := broker.hold("r")
	defer release()
	flooder, _ := h.dial("room=r")
	line := strings.Repeat("f", msgSize)
	const sent = 100 // 3.2 MB, three times the bound
	for range sent {
		flooder.send(line)
	}
	member.waitTexts(sent)
	h.m.pub.mu.Lock()
	queued, bytes := len(h.m.pub.queue), h.m.pub.bytes
	h.m.pub.mu.Unlock()
	if bytes > limit {
		t.Fatalf("%d broadcasts, %d bytes queued for the stalled broker, over the bound of %d", queued, bytes, limit)
	}
	// The batch in flight and the queue are published once the broker
	// answers; every other broadcast was refused and counted.
	release()
	eventually(t, "what was queued is published", func() bool {
		s := h.m.Stats()
		return s.BrokerQueueFull > 0 && s.BrokerPublished+s.BrokerQueueFull == sent
	})
}

func TestFailingBrokerIsReportedUntilItRecovers(t *testing.T) {
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{opts: []Option{WithBroker(broker)}})
	member, _ := h.dial("room=r")
	member.start()
	ctx := ctxTimeout(t)
	broker.setFail(errors.New("connection refused"))
	if err := h.m.Broadcast(ctx, "r", Text("first")); err != nil {
		t.Fatalf("the first broadcast cannot know yet: %v", err)
	}
	eventually(t, "the failed publish is counted", func() bool { return h.m.Stats().BrokerPublishErrors == 1 })
	err := h.m.Broadcast(ctx, "r", Text("second"))
	if !errors.Is(err, ErrBrokerUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("broadcast while the broker fails: %v, want ErrBrokerUnavailable with the cause", err)
	}
	if got := member.waitTexts(2); got[1] != "second" {
		t.Fatalf("local member got %v", got)
	}
	eventually(t, "the second failed publish is counted", func() bool { return h.m.Stats().BrokerPublishErrors == 2 })
	broker.setFail(nil)
	_ = h.m.Broadcast(ctx, "r", Text("third")) // reports the last failure, and goes
	eventually(t, "a publish succeeds", func() bool { return h.m.Stats().BrokerPublished == 1 })
	if err := h.m.Broadcast(ctx, "r", Text("fourth")); err != nil {
		t.Fatalf("broadcast after the broker recovered: %v", err)
	}
}

func TestBroadcastsReachTheBrokerInBatches(t *testing.T) {
	const broadcasts = 500
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{opts: []Option{WithBroker(broker)}})
	release := broker.hold("first")
	ctx := ctxTimeout(t)
	if err := h.m.Broadcast(ctx, "first", Text("x")); err != nil {
		t.Fatal(err)
	}
	<-broker.calls
	// While the broker holds the first batch, 500 broadcasts to 50 rooms
	// queue up: they go in a few batches, not one call each.
	for i := range broadcasts {
		if err := h.m.Broadcast(ctx, fmt.Sprintf("room-%d", i%50), Text("x")); err != nil {
			t.Fatal(err)
		}
	}
	release()
	eventually(t, "everything is published", func() bool { return h.m.Stats().BrokerPublished == broadcasts+1 })
	broker.mu.Lock()
	defer broker.mu.Unlock()
	if n := len(broker.batches); n > 3 {
		t.Fatalf("%d Publish calls for %d broadcasts (%v), want them batched", n, broadcasts+1, broker.batches)
	}
}

func TestNoBrokerCallHoldsALockOfTheManager(t *testing.T) {
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{opts: []Option{WithBroker(broker)}})
	member, c := h.dial("room=a")
	member.start()
	ctx := ctxTimeout(t)

	// Subscribe for room b waits at the broker.
	release := broker.hold("b")
	defer release()
	joined := make(chan error, 1)
	go func() { joined <- h.m.Join(ctx, c, "b") }()
	if call := <-broker.calls; call != "subscribe b" {
		t.Fatalf("broker call %q", call)
	}
	// Meanwhile the manager goes on: broadcasts, other joins, leaves, stats.
	if err := h.m.Broadcast(ctx, "a", Text("while b subscribes")); err != nil {
		t.Fatal(err)
	}
	if got := member.waitTexts(1); got[0] != "while b subscribes" {
		t.Fatalf("got %q", got)
	}
	if err := h.m.Join(ctx, c, "c"); err != nil {
		t.Fatal(err)
	}
	h.m.Leave(c, "c")
	_ = h.m.Stats()
	// A second join to b waits for the first subscription, bounded by
	// its own context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, other := h.dial("")
	if err := h.m.Join(short, other, "b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second join while b subscribes: %v, want its deadline", err)
	}
	release()
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if err := h.m.Join(ctx, other, "b"); err != nil {
		t.Fatal(err)
	}
}

func TestPerRoomOrderAcrossNodesOnManyRooms(t *testing.T) {
	const (
		rooms   = 50
		perRoom = 20
	)
	cl := newCluster(t, NewMemoryBroker(), 3, harnessConfig{})
	var query strings.Builder
	for r := range rooms {
		fmt.Fprintf(&query, "room=r%d&", r)
	}
	var clients []*client
	for _, node := range cl.nodes {
		c, _ := node.dial(query.String())
		clients = append(clients, c.start())
	}
	// Every node broadcasts to every room at once.
	var g errgroup.Group
	for n, node := range cl.nodes {
		for r := range rooms {
			g.Go(func() error {
				for i := range perRoom {
					if err := node.m.Broadcast(context.Background(), fmt.Sprintf("r%d", r), Text(fmt.Sprintf("%d-%d-%d", n, r, i))); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	total := len(cl.nodes) * rooms * perRoom
	for i, c := range clients {
		got := c.waitTexts(total)
		next := map[[2]int]int{}
		for _, text := range got {
			var n, r, seq int
			if _, err := fmt.Sscanf(text, "%d-%d-%d", &n, &r, &seq); err != nil {
				t.Fatalf("client %d: unexpected message %q", i, text)
			}
			if seq != next[[2]int{n, r}] {
				t.Fatalf("client %d: room %d from node %d: got %d, want %d", i, r, n, seq, next[[2]int{n, r}])
			}
			next[[2]int{n, r}]++
		}
		if len(got) != total {
			t.Fatalf("client %d got %d messages, want %d", i, len(got), total)
		}
	}
}

func TestEnvelopeOfAnotherVersionIsLoggedAsAnError(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	cl := newCluster(t, NewMemoryBroker(), 1, harnessConfig{opts: []Option{WithLogger(logger)}})
	member, _ := cl.nodes[0].dial("room=r")
	member.start()
	old := []byte{1, 0, 1, 'n', 0, 1, 'r', 'x'} // version 1, which also carried a sender
	if err := cl.broker.Publish(context.Background(), []Publication{{Room: "r", Payload: old}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old envelope is counted", func() bool { return cl.nodes[0].m.Stats().BrokerMalformed == 1 })
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "version 1") {
		t.Fatalf("log %q, want an error naming the version", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestShutdownPublishesWhatIsQueued(t *testing.T) {
	broker := newGateBroker()
	m, err := New(WithBroker(broker))
	if err != nil {
		t.Fatal(err)
	}
	release := broker.hold("r")
	ctx := ctxTimeout(t)
	for i := range 10 {
		if err := m.Broadcast(ctx, "r", Text(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	<-broker.calls
	done := make(chan error, 1)
	go func() { done <- m.Shutdown(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while broadcasts were still queued", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.BrokerPublished != 10 {
		t.Fatalf("BrokerPublished = %d after Shutdown, want 10", s.BrokerPublished)
	}
	if err := m.Broadcast(ctx, "r", Text("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Broadcast after Shutdown: %v, want ErrClosed", err)
	}
}
