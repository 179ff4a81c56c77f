package redisbroker

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"golang.org/x/sync/errgroup"
)

// newCluster starts three nodes sharing the Redis at addr.
func newCluster(t *testing.T, addr string) ([]*node, string) {
	t.Helper()
	prefix := testPrefix()
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, "node"+strconv.Itoa(i), addr, prefix))
	}
	return nodes, prefix
}

func TestBroadcastsReachEveryMemberOnEveryNodeOnceInOrder(t *testing.T) {
	requireRedis(t, sharedAddr)
	nodes, _ := newCluster(t, sharedAddr)
	var clients []*wsClient
	for i, n := range nodes {
		for j := range 2 {
			clients = append(clients, n.dial(t, fmt.Sprintf("c%d%d", i, j), "lobby"))
		}
	}

	const perNode = 200
	ctx := ctxFor(t)
	var g errgroup.Group
	for i, n := range nodes {
		g.Go(func() error {
			for k := range perNode {
				if err := n.m.Broadcast(ctx, "lobby", wsroom.Text(fmt.Sprintf("%d:%d", i, k))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		nextFrom := make([]int, len(nodes)) // next sequence number expected from each node
		for range perNode * len(nodes) {
			from, seq, ok := strings.Cut(c.next(t), ":")
			i, _ := strconv.Atoi(from)
			k, _ := strconv.Atoi(seq)
			if !ok || k != nextFrom[i] {
				t.Fatalf("client %s: got %s:%s, want %d:%d", c.id, from, seq, i, nextFrom[i])
			}
			nextFrom[i]++
		}
		c.none(t, 20*time.Millisecond)
	}
	for i, n := range nodes {
		if st := n.m.Stats(); st.BrokerReceived != perNode*uint64(len(nodes)-1) || st.BrokerPublishErrors != 0 {
			t.Errorf("node%d stats: %+v", i, st)
		}
	}
}

func TestExceptLeavesTheSenderOutOnEveryNode(t *testing.T) {
	requireRedis(t, sharedAddr)
	nodes, _ := newCluster(t, sharedAddr)
	sender := nodes[0].dial(t, "sender", "lobby")
	others := []*wsClient{
		nodes[0].dial(t, "local", "lobby"),
		nodes[1].dial(t, "remote1", "lobby"),
		nodes[2].dial(t, "remote2", "lobby"),
	}
	ctx := ctxFor(t)
	if err := nodes[0].m.Broadcast(ctx, "lobby", wsroom.Text("not for the sender"), wsroom.Except(nodes[0].conn(t, "sender"))); err != nil {
		t.Fatal(err)
	}
	for _, c := range others {
		if m := c.next(t); m != "not for the sender" {
			t.Fatalf("client %s got %q", c.id, m)
		}
	}
	sender.none(t, 100*time.Millisecond)
}

// Join returns once the room is subscribed at Redis, so a broadcast from
// another node right after it is never lost. Each round uses a room no one
// is in yet, so each Join has to subscribe.
func TestBroadcastRightAfterJoinIsNotLost(t *testing.T) {
	requireRedis(t, sharedAddr)
	nodes, _ := newCluster(t, sharedAddr)
	client := nodes[2].dial(t, "joiner")
	joiner := nodes[2].conn(t, "joiner")
	ctx := ctxFor(t)
	for i := range 50 {
		room := "late-" + strconv.Itoa(i)
		if err := nodes[2].m.Room(room).Join(ctx, joiner); err != nil {
			t.Fatal(err)
		}
		if err := nodes[i%2].m.Broadcast(ctx, room, wsroom.Text(room)); err != nil {
			t.Fatal(err)
		}
		if m := client.next(t); m != room {
			t.Fatalf("got %q, want %q", m, room)
		}
		nodes[2].m.Room(room).Leave(joiner)
	}
}

func TestRoomIsUnsubscribedAfterItsLastMemberLeavesEveryNode(t *testing.T) {
	requireRedis(t, sharedAddr)
	nodes, prefix := newCluster(t, sharedAddr)
	admin := newClient(t, sharedAddr, 0)
	channel := channelName(prefix, "lobby")
	for i, n := range nodes {
		n.dial(t, "a"+strconv.Itoa(i), "lobby")
		n.dial(t, "b"+strconv.Itoa(i), "lobby")
	}
	if got := numSub(t, admin, channel); got != 3 {
		t.Fatalf("NUMSUB = %d with members on three nodes, want 3", got)
	}
	for i, n := range nodes {
		for _, id := range []string{"a", "b"} {
			n.m.Disconnect(n.conn(t, id+strconv.Itoa(i)))
		}
		want := int64(len(nodes) - 1 - i)
		waitFor(t, 5*time.Second, fmt.Sprintf("NUMSUB %d", want), func() bool {
			return numSub(t, admin, channel) == want
		})
		if st := n.broker.Stats(); st.Channels != 0 || st.Subscriptions != 0 {
			t.Fatalf("node%d broker stats after its last leave: %+v", i, st)
		}
	}
}

func TestMalformedPayloadIsCountedAndDropped(t *testing.T) {
	requireRedis(t, sharedAddr)
	nodes, prefix := newCluster(t, sharedAddr)
	admin := newClient(t, sharedAddr, 0)
	var clients []*wsClient
	for i, n := range nodes {
		clients = append(clients, n.dial(t, "c"+strconv.Itoa(i), "lobby"))
	}
	ctx := ctxFor(t)
	if err := admin.Publish(ctx, channelName(prefix, "lobby"), "not an envelope").Err(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].m.Broadcast(ctx, "lobby", wsroom.Text("valid")); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if m := c.next(t); m != "valid" {
			t.Fatalf("client %s got %q first, want the valid broadcast", c.id, m)
		}
	}
	for i, n := range nodes {
		if got := n.m.Stats().BrokerMalformed; got != 1 {
			t.Errorf("node%d BrokerMalformed = %d, want 1", i, got)
		}
	}
}
