package wsroom

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"
)

// cluster is several managers sharing one broker, each behind its own
// server.
type cluster struct {
	broker Broker
	nodes  []*harness
}

func newCluster(t *testing.T, broker Broker, nodes int, cfg harnessConfig) *cluster {
	cl := &cluster{broker: broker}
	for i := range nodes {
		c := cfg
		c.opts = append([]Option{WithBroker(broker), WithNodeID("node-" + strconv.Itoa(i))}, cfg.opts...)
		cl.nodes = append(cl.nodes, startHarness(t, c))
	}
	return cl
}

func TestMultiNodeBroadcastReachesEveryMemberOnceInPublishOrder(t *testing.T) {
	const (
		perNode   = 3
		perSender = 200
	)
	cl := newCluster(t, NewMemoryBroker(), 3, harnessConfig{})
	var clients []*client
	for _, node := range cl.nodes {
		for range perNode {
			c, _ := node.dial("room=r")
			clients = append(clients, c.start())
		}
	}
	// Every node publishes concurrently.
	var g errgroup.Group
	for n, node := range cl.nodes {
		g.Go(func() error {
			for i := range perSender {
				if err := node.m.Broadcast(context.Background(), "r", Text(fmt.Sprintf("%d-%d", n, i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	total := len(cl.nodes) * perSender
	for i, c := range clients {
		got := c.waitTexts(total)
		next := make([]int, len(cl.nodes))
		for _, text := range got {
			n, seq := parseSeq(t, text)
			if seq != next[n] {
				t.Fatalf("client %d: from node %d got %d, want %d (lost, repeated or reordered)", i, n, seq, next[n])
			}
			next[n]++
		}
	}
	// No copy arrives late either: a marker from every node comes right
	// after the broadcasts.
	for n, node := range cl.nodes {
		if err := node.m.Broadcast(context.Background(), "r", Text(fmt.Sprintf("%d-%d", n, perSender))); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		if got := c.waitTexts(total + len(cl.nodes)); len(got) != total+len(cl.nodes) {
			t.Fatalf("client %d got %d messages, want %d", i, len(got), total+len(cl.nodes))
		}
	}
	for n, node := range cl.nodes {
		s := node.m.Stats()
		if s.BrokerPublished != perSender+1 || s.BrokerReceived != uint64(len(cl.nodes)-1)*(perSender+1) {
			t.Fatalf("node %d stats %+v", n, s)
		}
	}
}

func TestMultiNodeExceptLeavesTheSenderOut(t *testing.T) {
	cl := newCluster(t, NewMemoryBroker(), 3, harnessConfig{onMessage: func(h *harness, c *Conn, msg Message) {
		ctx := context.Background()
		if err := h.m.Broadcast(ctx, "r", msg, c); err != nil {
			t.Errorf("Broadcast: %v", err)
		}
		if err := h.m.SendPersonal(ctx, c, Text("ack")); err != nil {
			t.Errorf("SendPersonal: %v", err)
		}
	}})
	sender, _ := cl.nodes[0].dial("room=r")
	sameNode, _ := cl.nodes[0].dial("room=r")
	others := []*client{sameNode}
	for _, node := range cl.nodes[1:] {
		c, _ := node.dial("room=r")
		others = append(others, c)
	}
	sender.start()
	for _, c := range others {
		c.start()
	}
	sender.send("hello")
	if got := sender.waitTexts(1); got[0] != "ack" {
		t.Fatalf("sender got %q first, want only its ack", got[0])
	}
	for i, c := range others {
		if got := c.waitTexts(1); got[0] != "hello" {
			t.Fatalf("member %d got %q", i, got[0])
		}
	}
	// Nothing more reaches the sender: the next message it gets is a
	// later personal one.
	if err := cl.nodes[0].m.Broadcast(context.Background(), "r", Text("to all")); err != nil {
		t.Fatal(err)
	}
	if got := sender.waitTexts(2); got[1] != "to all" {
		t.Fatalf("sender's second message %q, want to all", got[1])
	}
}

func TestMultiNodeNoMessageLostRightAfterJoin(t *testing.T) {
	const rooms = 30
	cl := newCluster(t, NewMemoryBroker(), 2, harnessConfig{})
	member, c := cl.nodes[1].dial("")
	member.start()
	ctx := ctxTimeout(t)
	var want []string
	for i := range rooms {
		room := "fresh-" + strconv.Itoa(i)
		if err := cl.nodes[1].m.Join(ctx, c, room); err != nil {
			t.Fatal(err)
		}
		// Node 0 has no member of room: only the broker carries this.
		if err := cl.nodes[0].m.Broadcast(ctx, room, Text(room)); err != nil {
			t.Fatal(err)
		}
		want = append(want, room)
	}
	// Rooms are subscribed separately, so only the set is certain.
	got := member.waitTexts(rooms)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestMultiNodeMalformedPayloadIsCountedAndDropped(t *testing.T) {
	cl := newCluster(t, NewMemoryBroker(), 2, harnessConfig{})
	var clients []*client
	for _, node := range cl.nodes {
		c, _ := node.dial("room=r")
		clients = append(clients, c.start())
	}
	payloads := [][]byte{
		nil,
		[]byte("garbage"),
		{envelopeVersion + 1, 0},
		{1, 0, 1, 'n', 0, 1, 'r', 'x'}, // version 1, which also carried a sender
		{envelopeVersion, 0x80},
		{envelopeVersion, 0, 200}, // length past the end
		{envelopeVersion, 0, 1, 'n', 1, 'r', 0xff}, // text that is not UTF-8
		appendEnvelope(nil, envelope{Node: "elsewhere", Room: "other-room", Message: Text("misrouted")}),
	}
	for _, p := range payloads {
		if err := cl.broker.Publish(context.Background(), []Publication{{Room: "r", Payload: p}}); err != nil {
			t.Fatal(err)
		}
	}
	for n, node := range cl.nodes {
		eventually(t, fmt.Sprintf("node %d counts the malformed payloads", n), func() bool {
			return node.m.Stats().BrokerMalformed == uint64(len(payloads))
		})
	}
	// A well-formed one from a node outside the cluster is delivered, and
	// it is the first thing every client gets.
	valid := appendEnvelope(nil, envelope{Node: "elsewhere", Room: "r", Message: Text("valid")})
	if err := cl.broker.Publish(context.Background(), []Publication{{Room: "r", Payload: valid}}); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if got := c.waitTexts(1); got[0] != "valid" {
			t.Fatalf("client %d got %q first", i, got[0])
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	tests := []envelope{
		{Node: "n", Room: "r", Message: Text("hi")},
		{Node: "node-1", Room: "röom", Message: Binary([]byte{0, 1, 2})},
		{Node: "n", Room: "r"},
	}
	for _, want := range tests {
		got, err := parseEnvelope(appendEnvelope(nil, want))
		if err != nil {
			t.Fatalf("parse %+v: %v", want, err)
		}
		if got.Node != want.Node || got.Room != want.Room ||
			got.Message.Type() != want.Message.Type() || got.Message.Text() != want.Message.Text() {
			t.Fatalf("round trip of %+v gave %+v", want, got)
		}
	}
}

// slowCloseBroker is a memory broker whose subscriptions' Close waits for
// a signal, as a network broker's may wait for a round trip.
type slowCloseBroker struct {
	Broker
	closing chan struct{} // a Close has started
	release chan struct{} // lets every Close finish
}

type slowCloseSub struct {
	Subscription
	b *slowCloseBroker
}

func (b *slowCloseBroker) Subscribe(ctx context.Context, room string, deliver func([]byte)) (Subscription, error) {
	sub, err := b.Broker.Subscribe(ctx, room, deliver)
	if err != nil {
		return nil, err
	}
	return slowCloseSub{sub, b}, nil
}

func (s slowCloseSub) Close() error {
	select {
	case s.b.closing <- struct{}{}:
	default:
	}
	<-s.b.release
	return s.Subscription.Close()
}

func TestMultiNodeRejoinDuringUnsubscribeDeliversOnce(t *testing.T) {
	broker := &slowCloseBroker{Broker: NewMemoryBroker(), closing: make(chan struct{}, 16), release: make(chan struct{})}
	cl := newCluster(t, broker, 2, harnessConfig{})
	defer close(broker.release)
	_, first := cl.nodes[1].dial("room=r")
	member, second := cl.nodes[1].dial("")
	member.start()
	ctx := ctxTimeout(t)

	// The room's last member leaves; the old subscription is still being
	// closed when a new member joins and the room is subscribed anew.
	var wg sync.WaitGroup
	wg.Go(func() { cl.nodes[1].m.Leave(first, "r") })
	<-broker.closing
	if err := cl.nodes[1].m.Join(ctx, second, "r"); err != nil {
		t.Fatal(err)
	}
	want := []string{"once", "marker", "last"}
	for _, text := range want {
		if err := cl.nodes[0].m.Broadcast(ctx, "r", Text(text)); err != nil {
			t.Fatal(err)
		}
	}
	// Both subscriptions are live: each carries every broadcast.
	eventually(t, "both subscriptions deliver", func() bool {
		return cl.nodes[1].m.Stats().BrokerReceived == 2*uint64(len(want))
	})
	if got := member.waitTexts(len(want)); !slices.Equal(got, want) {
		t.Fatalf("member got %v, want each broadcast once", got)
	}
	broker.release <- struct{}{}
	wg.Wait()
}
