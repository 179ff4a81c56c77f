package nodetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/wsroomtest"
)

// Node is one process of a test cluster: a manager with a broker of its own,
// behind an httptest server. Its endpoint takes ?id=ID&room=NAME..., starts
// the connection with ID and joins it to every room before the connection
// counts as registered. The manager reads the connections (it is served
// with [wsroom.ConnectionManager.Start]) and ignores what clients send.
type Node struct {
	// Name is the node's name and its manager's node ID.
	Name string
	// Manager is the node's manager, for the broadcasts, joins, leaves and
	// counters a test makes itself.
	Manager *wsroom.ConnectionManager
	// Broker is the broker the manager uses, for an adapter's test to
	// assert to its own type.
	Broker wsroom.Broker

	ws *wsroomtest.Server // the clients' view of the endpoint

	mu      sync.Mutex
	conns   map[string]*wsroom.Conn // registered connections by ID
	failed  map[string]error        // connections that could not be registered
	changed chan struct{}           // closed and replaced when either changes
}

// Start starts a node called name whose manager uses broker. The test's
// cleanup shuts the manager down, which must succeed within [Timeout], and
// then closes the HTTP server. It does not close the broker: an adapter's
// test creates its broker, with the cleanup that closes it, before calling
// Start, so that the broker is closed after the node.
func Start(t testing.TB, name string, broker wsroom.Broker) *Node {
	t.Helper()
	m, err := wsroom.New(wsroom.WithBroker(broker), wsroom.WithNodeID(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	n := &Node{
		Name:    name,
		Manager: m,
		Broker:  broker,
		conns:   make(map[string]*wsroom.Conn),
		failed:  make(map[string]error),
		changed: make(chan struct{}),
	}
	srv := httptest.NewServer(http.HandlerFunc(n.serve))
	n.ws = wsroomtest.At(t, srv.URL)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("%s: shutdown: %v", name, err)
		}
		srv.Close()
	})
	return n
}

// Cluster starts size nodes called node0, node1, ..., each on the broker
// that newBroker returns for its name. The brokers should share one system
// and prefix, and so the nodes their rooms.
func Cluster(t testing.TB, size int, newBroker func(name string) wsroom.Broker) []*Node {
	t.Helper()
	nodes := make([]*Node, size)
	for i := range nodes {
		name := "node" + strconv.Itoa(i)
		nodes[i] = Start(t, name, newBroker(name))
	}
	return nodes
}

// serve is the node's endpoint.
func (n *Node) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, rooms := q.Get("id"), q["room"]
	_, err := n.Manager.Start(w, r, &wsroom.ConnectOptions{ID: id}, wsroom.Hooks{
		OnOpen: func(c *wsroom.Conn) { n.open(c, rooms) },
	})
	if err != nil {
		n.record(id, nil, fmt.Errorf("start: %w", err))
	}
}

// open joins c to rooms and registers it. A connection that cannot join
// is disconnected, and Dial reports why.
func (n *Node) open(c *wsroom.Conn, rooms []string) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for _, room := range rooms {
		if err := n.Manager.Join(ctx, c, room); err != nil {
			_ = n.Manager.Disconnect(c, websocket.StatusInternalError, "join failed")
			n.record(c.ID(), nil, fmt.Errorf("join room %q: %w", room, err))
			return
		}
	}
	n.record(c.ID(), c, nil)
}

func (n *Node) record(id string, c *wsroom.Conn, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.failed[id] = err
	} else {
		n.conns[id] = c
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

// Dial connects a client called id to the node and returns once the node
// has registered the connection and joined it to rooms, so that it gets
// every broadcast to them that starts afterwards. IDs must be unique within
// a node. The client is closed when the test ends.
func (n *Node) Dial(t testing.TB, id string, rooms ...string) *Client {
	t.Helper()
	if id == "" {
		t.Fatalf("%s: Dial needs a connection ID", n.Name)
	}
	if n.lookup(id) != nil {
		t.Fatalf("%s: a connection %q was dialled already", n.Name, id)
	}
	path := "/?" + url.Values{"id": {id}, "room": rooms}.Encode()
	wc, resp, err := n.ws.TryDial(path, wsroomtest.ReadLimit(1<<20))
	if err != nil {
		t.Fatalf("%s: dial %s: %v (%v)", n.Name, id, err, resp)
	}
	c := &Client{ID: id, wc: wc}
	n.await(t, id)
	return c
}

// await waits until the connection id is registered, or fails the test.
func (n *Node) await(t testing.TB, id string) {
	t.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		c, err, changed := n.conns[id], n.failed[id], n.changed
		ids := n.idsLocked()
		n.mu.Unlock()
		switch {
		case err != nil:
			t.Fatalf("%s: connection %q: %v", n.Name, id, err)
		case c != nil:
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: connection %q not registered within %v (registered: %s)", n.Name, id, Timeout, ids)
		}
	}
}

// Conn returns the server side of the connection that Dial connected as
// id, for Join, Leave, Disconnect and the except list of a broadcast.
func (n *Node) Conn(t testing.TB, id string) *wsroom.Conn {
	t.Helper()
	c := n.lookup(id)
	if c == nil {
		n.mu.Lock()
		defer n.mu.Unlock()
		t.Fatalf("%s has no connection %q (registered: %s)", n.Name, id, n.idsLocked())
	}
	return c
}

func (n *Node) lookup(id string) *wsroom.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[id]
}

func (n *Node) idsLocked() string {
	ids := make([]string, 0, len(n.conns))
	for id := range n.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return quoted(ids)
}

// Broadcast broadcasts text to room from this node, leaving out except, and
// fails the test if the manager returns an error. The broadcast is bounded
// by [Timeout].
func (n *Node) Broadcast(t testing.TB, room, text string, except ...*wsroom.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := n.Manager.Broadcast(ctx, room, wsroom.Text(text), except...); err != nil {
		t.Fatalf("%s: broadcast %q to room %q: %v", n.Name, text, room, err)
	}
}
