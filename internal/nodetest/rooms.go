package nodetest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
)

// CheckRoomsOrder has every node broadcast perRoom messages to each of
// rooms at once, from one goroutine per node and room, while
// clientsPerNode clients on every node are members of every room. Every
// client must receive every broadcast exactly once, each node's broadcasts
// to a room in the order the node made them, and the clients of one node
// all in the same order within each room. Then every node broadcasts an
// end marker to every room, and the markers must be every client's next
// messages: nothing else may arrive. Each node's Stats must count every
// broadcast of the others, markers included, in BrokerReceived, and no
// publish error.
func CheckRoomsOrder(t testing.TB, nodes []*Node, rooms []string, clientsPerNode, perRoom int) {
	t.Helper()
	clients := make([][]*Client, len(nodes))
	for i, n := range nodes {
		for j := range clientsPerNode {
			clients[i] = append(clients[i], n.Dial(t, fmt.Sprintf("rooms-n%dc%d", i, j), rooms...))
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*len(rooms))
	for i, n := range nodes {
		for r, room := range rooms {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), Timeout)
				defer cancel()
				for seq := range perRoom {
					if err := n.Manager.Broadcast(ctx, room, wsroom.Text(RoomMessage(i, r, seq))); err != nil {
						errs <- fmt.Errorf("%s: broadcast %d to room %q: %w", n.Name, seq, room, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total := len(nodes) * len(rooms) * perRoom
	for i := range nodes {
		var first [][]string // the first client's messages, by room
		for _, c := range clients[i] {
			byRoom := make([][]string, len(rooms))
			next := make(map[[2]int]int) // (node, room) -> the sequence number expected
			for range total {
				m := c.Next(t)
				n, r, seq, ok := ParseRoomMessage(m)
				if !ok || n >= len(nodes) || r >= len(rooms) {
					t.Fatalf("client %s: got %q, not a numbered broadcast; %s", c.ID, m, c.history())
				}
				if want := next[[2]int{n, r}]; seq != want {
					t.Fatalf("client %s: room %q: got %d from node %d, want %d; %s", c.ID, rooms[r], seq, n, want, c.history())
				}
				next[[2]int{n, r}]++
				byRoom[r] = append(byRoom[r], m)
			}
			if first == nil {
				first = byRoom
				continue
			}
			for r := range rooms {
				if at := firstDifference(first[r], byRoom[r]); at >= 0 {
					t.Fatalf("room %q: client %s saw %q at %d where %s saw %q", rooms[r], c.ID, byRoom[r][at], at, clients[i][0].ID, first[r][at])
				}
			}
		}
	}

	for i, n := range nodes {
		for r, room := range rooms {
			n.Broadcast(t, room, endMarker(i, r))
		}
	}
	for _, cs := range clients {
		for _, c := range cs {
			seen := make(map[string]bool)
			for range len(nodes) * len(rooms) {
				m := c.Next(t)
				if !strings.HasPrefix(m, "end ") || seen[m] {
					t.Fatalf("client %s: got %q among the end markers (%d of %d seen); %s", c.ID, m, len(seen), len(nodes)*len(rooms), c.history())
				}
				seen[m] = true
			}
		}
	}

	for _, n := range nodes {
		want := uint64((len(nodes) - 1) * len(rooms) * (perRoom + 1))
		if s := n.Manager.Stats(); s.BrokerReceived != want || s.BrokerPublishErrors != 0 {
			t.Errorf("%s: BrokerReceived = %d, BrokerPublishErrors = %d; want %d and 0", n.Name, s.BrokerReceived, s.BrokerPublishErrors, want)
		}
	}
}

// RoomMessage is the seq-th broadcast of node i to the r-th room, as
// [CheckRoomsOrder] and [Sequences] number them: "i:r:seq".
func RoomMessage(i, r, seq int) string {
	return strconv.Itoa(i) + ":" + strconv.Itoa(r) + ":" + strconv.Itoa(seq)
}

// ParseRoomMessage parses a [RoomMessage].
func ParseRoomMessage(m string) (i, r, seq int, ok bool) {
	parts := strings.Split(m, ":")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	var nums [3]int
	for k, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		nums[k] = n
	}
	return nums[0], nums[1], nums[2], true
}

func endMarker(i, r int) string { return "end " + strconv.Itoa(i) + " " + strconv.Itoa(r) }

// Sequences is what a client received of numbered broadcasts
// ([RoomMessage]) that may have gaps, as during an outage: for each node
// and room, the sequence numbers in the order they arrived.
type Sequences map[[2]int][]int

// TakeRoomMessages takes the client's messages until it has received the
// end marker of every node and room (nodes*rooms of them, as [SendEndMarkers]
// broadcasts them), and returns the numbered broadcasts that came before.
// It fails the test on a message that is neither, on a numbered broadcast
// that arrives after its node's end marker for the room, on a marker seen
// twice, and if the markers do not all come within [Timeout].
func (c *Client) TakeRoomMessages(t testing.TB, nodes, rooms int) Sequences {
	t.Helper()
	got := make(Sequences)
	ended := make(map[string]bool)
	deadline := time.Now().Add(Timeout)
	for len(ended) < nodes*rooms {
		m, ok, gone := c.take(time.Until(deadline))
		if !ok {
			t.Fatalf("client %s: %d of %d end markers within %v (ended: %v); %s", c.ID, len(ended), nodes*rooms, Timeout, gone, c.history())
		}
		if strings.HasPrefix(m, "end ") {
			if ended[m] {
				t.Fatalf("client %s: end marker %q twice; %s", c.ID, m, c.history())
			}
			ended[m] = true
			continue
		}
		i, r, seq, ok := ParseRoomMessage(m)
		if !ok || i >= nodes || r >= rooms {
			t.Fatalf("client %s: got %q, not a numbered broadcast; %s", c.ID, m, c.history())
		}
		if ended[endMarker(i, r)] {
			t.Fatalf("client %s: got %q after its end marker; %s", c.ID, m, c.history())
		}
		got[[2]int{i, r}] = append(got[[2]int{i, r}], seq)
	}
	return got
}

// SendEndMarkers broadcasts the end marker of every node to every room,
// for [Client.TakeRoomMessages].
func SendEndMarkers(t testing.TB, nodes []*Node, rooms []string) {
	t.Helper()
	for i, n := range nodes {
		for r, room := range rooms {
			n.Broadcast(t, room, endMarker(i, r))
		}
	}
}

// Check returns an error naming the first (node, room) whose sequence
// numbers are not strictly increasing (a duplicate or a message out of
// order), or, for a (node, room) for which complete reports true, that
// misses any number from 0 to sent[node][room]-1.
func (s Sequences) Check(sent [][]int, complete func(node, room int) bool) error {
	for i := range sent {
		for r, n := range sent[i] {
			seqs := s[[2]int{i, r}]
			for k := 1; k < len(seqs); k++ {
				if seqs[k] <= seqs[k-1] {
					return fmt.Errorf("node %d, room %d: %d arrived after %d", i, r, seqs[k], seqs[k-1])
				}
			}
			if complete(i, r) && len(seqs) != n {
				return fmt.Errorf("node %d, room %d: %d of %d broadcasts arrived (the last %v)", i, r, len(seqs), n, seqs[max(0, len(seqs)-5):])
			}
		}
	}
	return nil
}

// ProbeEach calls send(i, seq) for every client i that has received
// nothing yet, with seq 0, 1, ..., every interval, until every client has
// received a message. It returns each client's first message and how long
// after the call it was taken. It is for finding when each of several
// paths between nodes works again after an outage. It fails the test if
// a client gets nothing within [Timeout] or its connection ends.
func ProbeEach(t testing.TB, interval time.Duration, clients []*Client, send func(i, seq int)) (first []string, after []time.Duration) {
	t.Helper()
	start := time.Now()
	first = make([]string, len(clients))
	after = make([]time.Duration, len(clients))
	done := make([]bool, len(clients))
	left := len(clients)
	for seq := 0; left > 0; seq++ {
		if time.Since(start) > Timeout {
			for i, c := range clients {
				if !done[i] {
					t.Fatalf("client %s: nothing arrived within %v of probing; %s", c.ID, Timeout, c.history())
				}
			}
		}
		round := time.Now().Add(interval)
		for i := range clients {
			if !done[i] {
				send(i, seq)
			}
		}
		for i, c := range clients {
			if done[i] {
				continue
			}
			msg, ok, ended := c.take(max(time.Until(round), 0))
			switch {
			case ok:
				first[i], after[i], done[i] = msg, time.Since(start), true
				left--
			case ended != nil:
				c.missing(t, time.Since(start), ended)
			}
		}
	}
	return first, after
}
