package natsbroker

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// newCluster starts size nodes, each with a connection of its own to the
// server at sharedURL, sharing a prefix of their own.
func newCluster(t *testing.T, size int) []*nodetest.Node {
	t.Helper()
	prefix := testPrefix()
	return nodetest.Cluster(t, size, func(string) wsroom.Broker {
		return newBroker(t, connect(t, sharedURL), prefix)
	})
}

// brokerOf returns the broker of a node started by this package's tests.
func brokerOf(n *nodetest.Node) *Broker { return n.Broker.(*Broker) }

// TestBroadcastReachesEveryMemberOnEveryNodeOnceInOrder has three nodes
// broadcast to one room at once: every member gets every broadcast exactly
// once, each node's in the order it made them, and members of one node all
// see the same interleaving.
func TestBroadcastReachesEveryMemberOnEveryNodeOnceInOrder(t *testing.T) {
	nodetest.CheckOrder(t, newCluster(t, 3), 3, 300)
}

// TestConcurrentBroadcastsToManyRoomsKeepEachRoomsOrder has three nodes
// broadcast to each of 50 rooms at once, from one goroutine per node and
// room: every member of every room, on every node, gets each broadcast
// exactly once, each node's in the order it made them, and the members of
// one node all in one order (see nodetest.CheckRoomsOrder). The manager
// gathers the rooms' broadcasts into batches, so each batch interleaves
// many rooms.
func TestConcurrentBroadcastsToManyRoomsKeepEachRoomsOrder(t *testing.T) {
	nodes := newCluster(t, 3)
	nodetest.CheckRoomsOrder(t, nodes, manyRooms(50), 2, 20)
	for _, n := range nodes {
		if s := n.Manager.Stats(); s.BrokerBatches >= s.BrokerPublished {
			t.Errorf("%s: %d broadcasts published in %d batches, want batches of more than one", n.Name, s.BrokerPublished, s.BrokerBatches)
		}
		if s := brokerOf(n).Stats(); s.OutOfOrder != 0 || s.Dropped != 0 {
			t.Errorf("%s: %+v, want nothing out of order or dropped", n.Name, s)
		}
	}
}

// manyRooms returns n room names.
func manyRooms(n int) []string {
	rooms := make([]string, n)
	for i := range rooms {
		rooms[i] = "room-" + strconv.Itoa(i)
	}
	return rooms
}

func TestExceptLeavesTheSenderOutOnEveryNode(t *testing.T) {
	nodetest.CheckExcept(t, newCluster(t, 3))
}

// TestRemoteBroadcastRightAfterJoinIsNeverMissed broadcasts from another
// node as soon as Join returns.
func TestRemoteBroadcastRightAfterJoinIsNeverMissed(t *testing.T) {
	nodes := newCluster(t, 2)
	nodetest.CheckJoinThenBroadcast(t, nodes, 50)
	if n := brokerOf(nodes[1]).Stats().Subscriptions; n != 0 {
		t.Fatalf("%d room subscriptions left after every leave", n)
	}
}

func TestSubscriptionEndsAfterLastLocalMemberLeaves(t *testing.T) {
	nodes := newCluster(t, 2)
	a := nodes[0].Dial(t, "a", "lobby")
	nodes[0].Dial(t, "b", "lobby")
	remote := nodes[1].Dial(t, "remote", "lobby")
	b := brokerOf(nodes[0])
	if n := b.Stats().Subscriptions; n != 1 {
		t.Fatalf("two members of one room: %d subscriptions, want 1", n)
	}
	nodes[0].Manager.Leave(nodes[0].Conn(t, "b"), "lobby")
	if n := b.Stats().Subscriptions; n != 1 {
		t.Fatalf("one member left: %d subscriptions, want 1", n)
	}
	// The last member goes by closing its socket.
	a.Close(t)
	nodetest.WaitFor(t, "the room's subscription to end", func() bool { return b.Stats().Subscriptions == 0 })
	if n := b.nc.NumSubscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions left", n)
	}
	// The room still works for the other node.
	nodes[1].Broadcast(t, "lobby", "still here")
	remote.Expect(t, "still here")
}

func TestMalformedBrokerPayloadIsCountedAndDropped(t *testing.T) {
	nodes := newCluster(t, 2)
	var clients []*nodetest.Client
	for i, n := range nodes {
		clients = append(clients, n.Dial(t, fmt.Sprintf("c%d", i), "lobby"))
	}
	raw := connect(t, sharedURL)
	subject := brokerOf(nodes[0]).Subject("lobby")
	for _, p := range [][]byte{nil, {0xff}, []byte("not an envelope"), {1, 0, 200}} {
		if err := raw.Publish(subject, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		nodetest.WaitFor(t, n.Name+" to count 4 malformed payloads", func() bool {
			return n.Manager.Stats().BrokerMalformed == 4
		})
	}
	nodes[0].Broadcast(t, "lobby", "valid")
	for _, c := range clients {
		c.Expect(t, "valid")
	}
}
