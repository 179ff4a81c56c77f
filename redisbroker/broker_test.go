package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
	"golang.org/x/sync/errgroup"
)

// collector receives deliveries on a buffered channel.
type collector chan []byte

func (c collector) deliver(p []byte) { c <- p }

func (c collector) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-c:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
		return nil
	}
}

func (c collector) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case p := <-c:
		t.Fatalf("unexpected delivery %q", p)
	case <-time.After(within):
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSubscribeDeliversPublishesOverBothProtocols(t *testing.T) {
	requireRedis(t, sharedAddr)
	for _, protocol := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(protocol), func(t *testing.T) {
			ctx := ctxFor(t)
			prefix := testPrefix()
			pub := newBroker(t, newClient(t, sharedAddr, protocol), prefix)
			sub := newBroker(t, newClient(t, sharedAddr, protocol), prefix)
			got := make(collector, 10)
			s, err := sub.Subscribe(ctx, "lobby", got.deliver)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, b := range []*Broker{pub, sub} {
				if err := publishOne(ctx, b, "lobby", []byte("hello")); err != nil {
					t.Fatal(err)
				}
				if p := got.next(t); string(p) != "hello" {
					t.Fatalf("got %q, want hello", p)
				}
			}
			// Another room's publish is not delivered: a marker published
			// after it on the same connection is the next delivery.
			for _, room := range []string{"other", "lobby"} {
				if err := publishOne(ctx, pub, room, []byte(room)); err != nil {
					t.Fatal(err)
				}
			}
			if p := got.next(t); string(p) != "lobby" {
				t.Fatalf("got %q, want the marker published after another room's", p)
			}
			if st := pub.Stats(); st.Published != 3 || st.PublishErrors != 0 {
				t.Fatalf("publisher stats %+v", st)
			}
			if st := sub.Stats(); st.Received != 3 || st.Channels != 1 || st.Subscriptions != 1 {
				t.Fatalf("subscriber stats %+v", st)
			}
		})
	}
}

// A publish that starts after Subscribe returns must never be missed: each
// round subscribes a fresh room and publishes at once from another client.
// The subscriber's commands reach Redis 20ms late, so a Subscribe that
// returned before Redis confirmed would lose the race.
func TestPublishRightAfterSubscribeIsNeverMissed(t *testing.T) {
	requireRedis(t, sharedAddr)
	ctx := ctxFor(t)
	prefix := testPrefix()
	pub := newBroker(t, newClient(t, sharedAddr, 0), prefix)
	sub := newBroker(t, newClient(t, slowProxy(t, sharedAddr, 20*time.Millisecond), 0), prefix)
	var g errgroup.Group
	for w := range 4 {
		g.Go(func() error {
			for i := range 10 {
				room := fmt.Sprintf("room-%d-%d", w, i)
				got := make(collector, 1)
				s, err := sub.Subscribe(ctx, room, got.deliver)
				if err != nil {
					return err
				}
				if err := publishOne(ctx, pub, room, []byte(room)); err != nil {
					return err
				}
				select {
				case p := <-got:
					if string(p) != room {
						return fmt.Errorf("got %q, want %q", p, room)
					}
				case <-time.After(2 * time.Second):
					return fmt.Errorf("publish to %s right after Subscribe was missed", room)
				}
				if err := s.Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionsToOneRoomShareOneChannel(t *testing.T) {
	requireRedis(t, sharedAddr)
	ctx := ctxFor(t)
	prefix := testPrefix()
	admin := newClient(t, sharedAddr, 0)
	b := newBroker(t, newClient(t, sharedAddr, 0), prefix)
	channel := channelName(prefix, "shared")

	first, second := make(collector, 10), make(collector, 10)
	s1, err := b.Subscribe(ctx, "shared", first.deliver)
	if err != nil {
		t.Fatal(err)
	}
	// The manager may open a room's new subscription before closing the old.
	s2, err := b.Subscribe(ctx, "shared", second.deliver)
	if err != nil {
		t.Fatal(err)
	}
	if n := numSub(t, admin, channel); n != 1 {
		t.Fatalf("NUMSUB = %d with two subscriptions, want 1", n)
	}
	if err := publishOne(ctx, b, "shared", []byte("both")); err != nil {
		t.Fatal(err)
	}
	first.next(t)
	second.next(t)

	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if n := numSub(t, admin, channel); n != 1 {
		t.Fatalf("NUMSUB = %d after closing one of two, want 1", n)
	}
	if err := publishOne(ctx, b, "shared", []byte("second only")); err != nil {
		t.Fatal(err)
	}
	if p := second.next(t); string(p) != "second only" {
		t.Fatalf("got %q", p)
	}
	first.none(t, 50*time.Millisecond)

	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := numSub(t, admin, channel); n != 0 {
		t.Fatalf("NUMSUB = %d after the last Close, want 0", n)
	}
	if st := b.Stats(); st.Channels != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats after the last Close: %+v", st)
	}

	// Closing and reopening at once leaves the room subscribed.
	for range 50 {
		s, err := b.Subscribe(ctx, "shared", first.deliver)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	s3, err := b.Subscribe(ctx, "shared", first.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if n := numSub(t, admin, channel); n != 1 {
		t.Fatalf("NUMSUB = %d after reopening, want 1", n)
	}
}

func TestTenThousandPublishesArriveInOrder(t *testing.T) {
	requireRedis(t, sharedAddr)
	ctx := ctxFor(t)
	prefix := testPrefix()
	pub := newBroker(t, newClient(t, sharedAddr, 0), prefix)
	sub := newBroker(t, newClient(t, sharedAddr, 0), prefix)
	const n = 10_000
	got := make(collector, n)
	s, err := sub.Subscribe(ctx, "ordered", got.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		if err := publishOne(ctx, pub, "ordered", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if p := got.next(t); string(p) != strconv.Itoa(i) {
			t.Fatalf("delivery %d is %q", i, p)
		}
	}
}

func TestCloseEndsDeliveriesAndLaterCalls(t *testing.T) {
	requireRedis(t, sharedAddr)
	ctx := ctxFor(t)
	prefix := testPrefix()
	admin := newClient(t, sharedAddr, 0)
	b, err := New(newClient(t, sharedAddr, 0), WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	got := make(collector, 10)
	s, err := b.Subscribe(ctx, "r", got.deliver)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Subscription.Close after Broker.Close: %v", err)
	}
	if _, err := b.Subscribe(ctx, "r", got.deliver); !errors.Is(err, wsroom.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want wsroom.ErrClosed", err)
	}
	if err := publishOne(ctx, b, "r", []byte("x")); !errors.Is(err, wsroom.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want wsroom.ErrClosed", err)
	}
	nodetest.WaitFor(t, "Redis to drop the closed connection", func() bool {
		return numSub(t, admin, channelName(prefix, "r")) == 0
	})
}

func TestWithoutRedisPublishFailsPromptlyAndSubscribeWaits(t *testing.T) {
	addr := freeAddr(t)
	b := newBroker(t, newClient(t, addr, 0), testPrefix())
	ctx := ctxFor(t)
	start := time.Now()
	s, err := b.Subscribe(ctx, "r", func([]byte) {})
	if err != nil {
		t.Fatalf("Subscribe without Redis: %v, want a pending subscription", err)
	}
	if err := publishOne(ctx, b, "r", []byte("x")); err == nil {
		t.Fatal("Publish succeeded without Redis")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Subscribe and Publish took %v", d)
	}
	if st := b.Stats(); st.PublishErrors != 1 || st.Channels != 1 || st.Subscriptions != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Subscribe(cancelled, "r", func([]byte) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a cancelled context: %v", err)
	}
	if st := b.Stats(); st.Channels != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats after Close: %+v", st)
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	c := newClient(t, sharedAddr, 0)
	for name, opt := range map[string]Option{
		"nil option":   nil,
		"empty prefix": WithPrefix(""),
		"glob prefix":  WithPrefix("app*:"),
		"nil logger":   WithLogger(nil),
	} {
		if _, err := New(c, opt); !errors.Is(err, wsroom.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want wsroom.ErrInvalidOption", name, err)
		}
	}
	if _, err := New(nil); !errors.Is(err, wsroom.ErrInvalidOption) {
		t.Errorf("nil client: err = %v, want wsroom.ErrInvalidOption", err)
	}
}

func TestChannelNameEscapesAllButPlainBytes(t *testing.T) {
	for _, tc := range []struct{ room, want string }{
		{"lobby", "p:lobby"},
		{"chat:general", "p:chat:general"},
		{"a-b_c.d~e", "p:a-b_c.d~e"},
		{"two words", "p:two%20words"},
		{"glob*?[x]\\", "p:glob%2A%3F%5Bx%5D%5C"},
		{"100%", "p:100%25"},
		{"été", "p:%C3%A9t%C3%A9"},
	} {
		if got := channelName("p:", tc.room); got != tc.want {
			t.Errorf("channelName(%q) = %q, want %q", tc.room, got, tc.want)
		}
	}
}

// A batch is one pipeline: through a proxy that holds every chunk the
// client sends for 50ms, a batch of 400 publications to four rooms takes
// about one delay, where one round trip each would take 20s. Each room's
// publications arrive in batch order.
func TestBatchIsOneRoundTripInBatchOrder(t *testing.T) {
	requireRedis(t, sharedAddr)
	ctx := ctxFor(t)
	prefix := testPrefix()
	pub := newBroker(t, newClient(t, slowProxy(t, sharedAddr, 50*time.Millisecond), 0), prefix)
	sub := newBroker(t, newClient(t, sharedAddr, 0), prefix)
	rooms := []string{"a", "b", "c", "d"}
	got := make(map[string]collector)
	for _, room := range rooms {
		got[room] = make(collector, 200)
		s, err := sub.Subscribe(ctx, room, got[room].deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	// The connection is dialled and set up through the proxy first.
	if err := publishOne(ctx, pub, "a", []byte("warm")); err != nil {
		t.Fatal(err)
	}
	got["a"].next(t)

	var batch []wsroom.Publication
	for i := range 400 {
		batch = append(batch, wsroom.Publication{Room: rooms[i%len(rooms)], Payload: []byte(strconv.Itoa(i))})
	}
	start := time.Now()
	if err := pub.Publish(ctx, batch); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("a batch of %d through a proxy that delays each chunk 50ms took %v", len(batch), elapsed.Round(time.Millisecond))
	if elapsed > 2*time.Second {
		t.Fatalf("a batch of %d took %v: not one round trip", len(batch), elapsed)
	}
	for r, room := range rooms {
		for i := r; i < len(batch); i += len(rooms) {
			if p := got[room].next(t); string(p) != strconv.Itoa(i) {
				t.Fatalf("room %s: got %q, want %d", room, p, i)
			}
		}
	}
	if st := pub.Stats(); st.Published != 401 || st.PublishErrors != 0 {
		t.Fatalf("publisher stats %+v", st)
	}
}
