package natsbroker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
)

// node is one process of a cluster: a manager with its own NATS
// connection, broker and HTTP server.
type node struct {
	nc     *nats.Conn
	broker *Broker
	m      *wsroom.ConnectionManager
	srv    *httptest.Server

	mu        sync.Mutex
	conns     map[string]*wsroom.Conn
	connected chan string // IDs of connections as they are registered
}

// newNode starts a node on url. Its endpoint accepts ?id=ID&room=NAME,
// registers the connection under ID, joins the rooms and reads until the
// connection ends.
func newNode(t *testing.T, url, prefix string, natsOpts ...nats.Option) *node {
	t.Helper()
	n := &node{
		nc:        connect(t, url, natsOpts...),
		conns:     make(map[string]*wsroom.Conn),
		connected: make(chan string, 64),
	}
	n.broker = newBroker(t, n.nc, prefix)
	m, err := wsroom.New(wsroom.WithBroker(n.broker))
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		c, err := m.Connect(w, r, wsroom.ConnID(id), wsroom.JoinRooms(r.URL.Query()["room"]...))
		if err != nil {
			t.Errorf("connect %s: %v", id, err)
			return
		}
		n.mu.Lock()
		n.conns[id] = c
		n.mu.Unlock()
		n.connected <- id
		for {
			if _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(n.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

func (n *node) conn(id string) *wsroom.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[id]
}

// client is a WebSocket client whose messages arrive on msgs.
type client struct {
	id   string
	ws   *websocket.Conn
	msgs chan string
	done chan struct{} // closed when the connection ends
}

// dial connects a client with the given ID to n and waits until n has
// registered it (and joined its rooms).
func (n *node) dial(t *testing.T, id string, rooms ...string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/?id=" + id
	for _, r := range rooms {
		u += "&room=" + r
	}
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{id: id, ws: ws, msgs: make(chan string, 10_000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, p, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			c.msgs <- string(p)
		}
	}()
	t.Cleanup(func() {
		_ = ws.CloseNow()
		<-c.done
	})
	select {
	case got := <-n.connected:
		if got != id {
			t.Fatalf("registered %q, want %q", got, id)
		}
	case <-ctx.Done():
		t.Fatalf("%s not registered", id)
	}
	return c
}

// next returns the client's next message.
func (c *client) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		t.Fatalf("%s: connection ended", c.id)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: timed out waiting for a message", c.id)
	}
	return ""
}

func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	if got := c.next(t); got != want {
		t.Fatalf("%s got %q, want %q", c.id, got, want)
	}
}

func newCluster(t *testing.T, size int) []*node {
	prefix := testPrefix()
	nodes := make([]*node, size)
	for i := range nodes {
		nodes[i] = newNode(t, sharedURL, prefix)
	}
	return nodes
}

func broadcast(t *testing.T, n *node, room, text string, opts ...wsroom.BroadcastOption) {
	t.Helper()
	if err := n.m.Broadcast(context.Background(), room, wsroom.Text(text), opts...); err != nil {
		t.Fatal(err)
	}
}

// TestBroadcastReachesEveryMemberOnEveryNodeOnceInOrder has three nodes
// broadcast to one room at once: every member gets every broadcast exactly
// once, each node's in the order it made them, and members of one node all
// see the same interleaving.
func TestBroadcastReachesEveryMemberOnEveryNodeOnceInOrder(t *testing.T) {
	const perNode = 300
	nodes := newCluster(t, 3)
	clients := make([][]*client, len(nodes))
	for i, n := range nodes {
		for j := range 3 {
			clients[i] = append(clients[i], n.dial(t, fmt.Sprintf("n%dc%d", i, j), "lobby"))
		}
	}

	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for seq := range perNode {
				if err := n.m.Broadcast(context.Background(), "lobby", wsroom.Text(fmt.Sprintf("%d %d", i, seq))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	for i := range nodes {
		var first []string
		for _, c := range clients[i] {
			got := make([]string, 0, len(nodes)*perNode)
			next := make([]int, len(nodes))
			for range len(nodes) * perNode {
				m := c.next(t)
				var origin, seq int
				if _, err := fmt.Sscanf(m, "%d %d", &origin, &seq); err != nil {
					t.Fatalf("%s got %q", c.id, m)
				}
				if seq != next[origin] {
					t.Fatalf("%s got %d from node %d, want %d", c.id, seq, origin, next[origin])
				}
				next[origin]++
				got = append(got, m)
			}
			if first == nil {
				first = got
			} else if !equal(first, got) {
				t.Fatalf("%s saw another order than %s", c.id, clients[i][0].id)
			}
		}
	}
	// Nothing more arrives: a final marker is every client's next message.
	broadcast(t, nodes[0], "lobby", "end")
	for _, cs := range clients {
		for _, c := range cs {
			c.expect(t, "end")
		}
	}
	for i, n := range nodes {
		s := n.m.Stats()
		if want := uint64((len(nodes) - 1) * perNode); s.BrokerReceived != want+boolToUint(i != 0) {
			t.Errorf("node %d: BrokerReceived = %d", i, s.BrokerReceived)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func boolToUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestExceptLeavesTheSenderOutOnEveryNode(t *testing.T) {
	nodes := newCluster(t, 3)
	sender := nodes[0].dial(t, "sender", "lobby")
	var others []*client
	for i, n := range nodes {
		others = append(others, n.dial(t, fmt.Sprintf("other%d", i), "lobby"))
	}
	broadcast(t, nodes[0], "lobby", "not to the sender", wsroom.Except(nodes[0].conn("sender")))
	broadcast(t, nodes[0], "lobby", "to all")
	for _, c := range others {
		c.expect(t, "not to the sender")
		c.expect(t, "to all")
	}
	sender.expect(t, "to all")
}

// TestRemoteBroadcastRightAfterJoinIsNeverMissed broadcasts from another
// node as soon as Room.Join returns.
func TestRemoteBroadcastRightAfterJoinIsNeverMissed(t *testing.T) {
	nodes := newCluster(t, 2)
	c := nodes[0].dial(t, "joiner")
	conn := nodes[0].conn("joiner")
	for i := range 50 {
		room := fmt.Sprintf("room-%d", i)
		if err := nodes[0].m.Room(room).Join(context.Background(), conn); err != nil {
			t.Fatal(err)
		}
		broadcast(t, nodes[1], room, room)
		c.expect(t, room)
		nodes[0].m.Room(room).Leave(conn)
	}
	if n := nodes[0].broker.Stats().Subscriptions; n != 0 {
		t.Fatalf("%d room subscriptions left after every leave", n)
	}
}

func TestSubscriptionEndsAfterLastLocalMemberLeaves(t *testing.T) {
	nodes := newCluster(t, 2)
	a := nodes[0].dial(t, "a", "lobby")
	nodes[0].dial(t, "b", "lobby")
	remote := nodes[1].dial(t, "remote", "lobby")
	b := nodes[0].broker
	if n := b.Stats().Subscriptions; n != 1 {
		t.Fatalf("two members of one room: %d subscriptions, want 1", n)
	}
	nodes[0].m.Room("lobby").Leave(nodes[0].conn("b"))
	if n := b.Stats().Subscriptions; n != 1 {
		t.Fatalf("one member left: %d subscriptions, want 1", n)
	}
	// The last member goes by closing its socket.
	if err := a.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the room's subscription to end", func() bool { return b.Stats().Subscriptions == 0 })
	if n := nodes[0].nc.NumSubscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions left", n)
	}
	// The room still works for the other node.
	broadcast(t, nodes[1], "lobby", "still here")
	remote.expect(t, "still here")
}

func TestMalformedBrokerPayloadIsCountedAndDropped(t *testing.T) {
	nodes := newCluster(t, 2)
	var clients []*client
	for i, n := range nodes {
		clients = append(clients, n.dial(t, fmt.Sprintf("c%d", i), "lobby"))
	}
	raw := connect(t, sharedURL)
	subject := nodes[0].broker.Subject("lobby")
	for _, p := range [][]byte{nil, {0xff}, []byte("not an envelope"), {1, 0, 200}} {
		if err := raw.Publish(subject, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		waitFor(t, 5*time.Second, fmt.Sprintf("node %d to count 4 malformed payloads", i), func() bool {
			return n.m.Stats().BrokerMalformed == 4
		})
	}
	broadcast(t, nodes[0], "lobby", "valid")
	for _, c := range clients {
		c.expect(t, "valid")
	}
}
