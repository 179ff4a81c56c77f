package nodetest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wsroom/wsroom"
)

// The Check functions are the cross-node scenarios of the guarantees every
// [wsroom.Broker] gives through a manager. Each takes a fresh cluster, whose
// brokers share one system under a prefix no other test uses, dials the
// clients it needs (rooms "lobby" and "join-N") and fails the test on the
// first broken guarantee.

// CheckOrder has every node broadcast perNode messages to one room at once,
// whose members are clientsPerNode clients on every node. Every client must
// receive every broadcast exactly once, each node's in the order the node
// made them, and the clients of one node all in the same interleaving;
// nothing else may arrive (an end marker broadcast last is every client's
// next message). Each node's Stats must then count every broadcast of the
// others in BrokerReceived, and no publish error.
func CheckOrder(t testing.TB, nodes []*Node, clientsPerNode, perNode int) {
	t.Helper()
	clients := make([][]*Client, len(nodes))
	for i, n := range nodes {
		for j := range clientsPerNode {
			clients[i] = append(clients[i], n.Dial(t, fmt.Sprintf("n%dc%d", i, j), "lobby"))
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			for seq := range perNode {
				if err := n.Manager.Broadcast(ctx, "lobby", message(i, seq)); err != nil {
					errs <- fmt.Errorf("%s: broadcast %d: %w", n.Name, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	for i := range nodes {
		var first []string
		for _, c := range clients[i] {
			got := c.expectInterleaving(t, len(nodes), perNode)
			if first == nil {
				first = got
			} else if at := firstDifference(first, got); at >= 0 {
				t.Fatalf("client %s saw %q at %d where %s saw %q", c.ID, got[at], at, clients[i][0].ID, first[at])
			}
		}
	}
	nodes[0].Broadcast(t, "lobby", "end")
	for _, cs := range clients {
		for _, c := range cs {
			c.Expect(t, "end")
		}
	}

	for i, n := range nodes {
		want := uint64((len(nodes) - 1) * perNode)
		if i != 0 {
			want++ // the end marker
		}
		if s := n.Manager.Stats(); s.BrokerReceived != want || s.BrokerPublishErrors != 0 {
			t.Errorf("%s: BrokerReceived = %d, BrokerPublishErrors = %d; want %d and 0", n.Name, s.BrokerReceived, s.BrokerPublishErrors, want)
		}
	}
}

// message is the seq-th broadcast of node i in [CheckOrder]: "i:seq".
func message(i, seq int) wsroom.Message {
	return wsroom.Text(strconv.Itoa(i) + ":" + strconv.Itoa(seq))
}

// expectInterleaving takes nodes*perNode messages of [CheckOrder], checks
// that each node's arrive in sequence, and returns them.
func (c *Client) expectInterleaving(t testing.TB, nodes, perNode int) []string {
	t.Helper()
	next := make([]int, nodes) // the sequence number expected from each node
	got := make([]string, 0, nodes*perNode)
	for range nodes * perNode {
		m := c.Next(t)
		from, seq, ok := strings.Cut(m, ":")
		i, err1 := strconv.Atoi(from)
		k, err2 := strconv.Atoi(seq)
		if !ok || err1 != nil || err2 != nil || i < 0 || i >= nodes {
			t.Fatalf("client %s: got %q, not a numbered broadcast; %s", c.ID, m, c.history())
		}
		if k != next[i] {
			t.Fatalf("client %s: got %s from node %d, want %d; %s", c.ID, seq, i, next[i], c.history())
		}
		next[i]++
		got = append(got, m)
	}
	return got
}

// firstDifference returns the first index at which a and b, of one length,
// differ, or -1.
func firstDifference(a, b []string) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// CheckExcept broadcasts from the first node to a room, leaving out the
// sender, then to everyone. Members on every node, the sender's own node
// included, get both broadcasts in order; the sender gets only the second.
func CheckExcept(t testing.TB, nodes []*Node) {
	t.Helper()
	sender := nodes[0].Dial(t, "sender", "lobby")
	var others []*Client
	for i, n := range nodes {
		others = append(others, n.Dial(t, "other"+strconv.Itoa(i), "lobby"))
	}
	nodes[0].Broadcast(t, "lobby", "not to the sender", nodes[0].Conn(t, "sender"))
	nodes[0].Broadcast(t, "lobby", "to all")
	for _, c := range others {
		c.Expect(t, "not to the sender", "to all")
	}
	sender.Expect(t, "to all")
}

// CheckJoinThenBroadcast checks that a broadcast another node makes as
// soon as [wsroom.ConnectionManager.Join] returns is never missed: Join
// returns only once the broker has the subscription. Each of rounds rounds
// joins a client of the last node to a room no one is in yet (so that the
// join has to subscribe), broadcasts to it from one of the other nodes in
// turn, and leaves the room again. Afterwards the last node has no rooms.
func CheckJoinThenBroadcast(t testing.TB, nodes []*Node, rounds int) {
	t.Helper()
	if len(nodes) < 2 {
		t.Fatal("CheckJoinThenBroadcast needs two nodes")
	}
	last := nodes[len(nodes)-1]
	client := last.Dial(t, "joiner")
	joiner := last.Conn(t, "joiner")
	for i := range rounds {
		room := "join-" + strconv.Itoa(i)
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		err := last.Manager.Join(ctx, joiner, room)
		cancel()
		if err != nil {
			t.Fatalf("%s: join room %q: %v", last.Name, room, err)
		}
		nodes[i%(len(nodes)-1)].Broadcast(t, room, room)
		client.Expect(t, room)
		last.Manager.Leave(joiner, room)
	}
	if n := last.Manager.Stats().Rooms; n != 0 {
		t.Fatalf("%s: %d rooms after every leave, want 0", last.Name, n)
	}
}
