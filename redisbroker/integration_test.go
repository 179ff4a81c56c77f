package redisbroker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// nodeBroker returns a broker on a Redis client of its own, as a node of a
// cluster has. The client never retries a command and gives up dialling
// after a second, so Publish fails promptly while Redis is down. Both are
// closed when the test ends, after the node that uses them.
func nodeBroker(t *testing.T, addr, prefix string, opts ...Option) *Broker {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = client.Close() })
	return newBroker(t, client, prefix, opts...)
}

// newCluster starts size nodes sharing the Redis at sharedAddr, under a
// prefix of their own.
func newCluster(t *testing.T, size int) []*nodetest.Node {
	t.Helper()
	requireRedis(t, sharedAddr)
	prefix := testPrefix()
	return nodetest.Cluster(t, size, func(string) wsroom.Broker { return nodeBroker(t, sharedAddr, prefix) })
}

// brokerOf returns the broker of a node started by this package's tests.
func brokerOf(n *nodetest.Node) *Broker { return n.Broker.(*Broker) }

func TestBroadcastsReachEveryMemberOnEveryNodeOnceInOrder(t *testing.T) {
	nodetest.CheckOrder(t, newCluster(t, 3), 2, 200)
}

// Every node broadcasts to each of 50 rooms at once, from a goroutine per
// room: every member of every room, on every node, gets each broadcast
// once, each node's in its order, the members of one node all in one order.
func TestConcurrentBroadcastsToManyRoomsKeepEachRoomsOrder(t *testing.T) {
	nodetest.CheckRoomsOrder(t, newCluster(t, 3), manyRooms(50), 2, 20)
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

// Join returns once the room is subscribed at Redis, so a broadcast from
// another node right after it is never lost.
func TestBroadcastRightAfterJoinIsNotLost(t *testing.T) {
	nodes := newCluster(t, 3)
	nodetest.CheckJoinThenBroadcast(t, nodes, 50)
	last := brokerOf(nodes[len(nodes)-1])
	nodetest.WaitFor(t, "the joiner's node to unsubscribe every room", func() bool {
		st := last.Stats()
		return st.Channels == 0 && st.Subscriptions == 0
	})
}

func TestRoomIsUnsubscribedAfterItsLastMemberLeavesEveryNode(t *testing.T) {
	nodes := newCluster(t, 3)
	admin := newClient(t, sharedAddr, 0)
	channel := channelName(brokerOf(nodes[0]).prefix, "lobby")
	var clients []*nodetest.Client
	for i, n := range nodes {
		for _, id := range []string{"a", "b"} {
			clients = append(clients, n.Dial(t, id+strconv.Itoa(i), "lobby"))
		}
	}
	if got := numSub(t, admin, channel); got != 3 {
		t.Fatalf("NUMSUB = %d with members on three nodes, want 3", got)
	}
	for i, n := range nodes {
		for _, id := range []string{"a", "b"} {
			if err := n.Manager.Disconnect(n.Conn(t, id+strconv.Itoa(i)), websocket.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
		}
		want := int64(len(nodes) - 1 - i)
		nodetest.WaitFor(t, "NUMSUB "+strconv.FormatInt(want, 10), func() bool {
			return numSub(t, admin, channel) == want
		})
		if st := brokerOf(n).Stats(); st.Channels != 0 || st.Subscriptions != 0 {
			t.Fatalf("%s broker stats after its last leave: %+v", n.Name, st)
		}
	}
	for _, c := range clients {
		nodetest.WaitFor(t, "client "+c.ID+" to see its connection closed", func() bool { return !c.Connected() })
	}
}

func TestMalformedPayloadIsCountedAndDropped(t *testing.T) {
	nodes := newCluster(t, 3)
	admin := newClient(t, sharedAddr, 0)
	var clients []*nodetest.Client
	for i, n := range nodes {
		clients = append(clients, n.Dial(t, "c"+strconv.Itoa(i), "lobby"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.Timeout)
	defer cancel()
	if err := admin.Publish(ctx, channelName(brokerOf(nodes[0]).prefix, "lobby"), "not an envelope").Err(); err != nil {
		t.Fatal(err)
	}
	nodes[0].Broadcast(t, "lobby", "valid")
	for _, c := range clients {
		c.Expect(t, "valid")
	}
	for _, n := range nodes {
		if got := n.Manager.Stats().BrokerMalformed; got != 1 {
			t.Errorf("%s BrokerMalformed = %d, want 1", n.Name, got)
		}
	}
}
