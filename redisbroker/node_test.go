package redisbroker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

// node is one server process of a test cluster: a manager with its own
// Redis client, broker and HTTP server.
type node struct {
	name   string
	m      *wsroom.ConnectionManager
	broker *Broker
	srv    *httptest.Server
	conns  sync.Map // connection ID -> *wsroom.Conn, once connected
}

// newNode starts a node on the Redis at addr. Its handler accepts
// ?id=ID&room=R..., joins the rooms before answering, and reads until the
// connection ends.
func newNode(t *testing.T, name, addr, prefix string) *node {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	broker, err := New(client, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wsroom.New(wsroom.WithBroker(broker), wsroom.WithNodeID(name))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, m: m, broker: broker}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c, err := m.Connect(w, r, wsroom.ConnID(q.Get("id")), wsroom.JoinRooms(q["room"]...))
		if err != nil {
			return
		}
		n.conns.Store(c.ID(), c)
		for {
			if _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("%s: shutdown: %v", name, err)
		}
		n.srv.Close()
		if err := broker.Close(); err != nil {
			t.Errorf("%s: close broker: %v", name, err)
		}
		_ = client.Close()
	})
	return n
}

// conn returns the server side of the connection called id, waiting for
// Connect to have registered it (and joined its rooms).
func (n *node) conn(t *testing.T, id string) *wsroom.Conn {
	t.Helper()
	var c any
	waitFor(t, 5*time.Second, "connection "+id+" on "+n.name, func() bool {
		var ok bool
		c, ok = n.conns.Load(id)
		return ok
	})
	return c.(*wsroom.Conn)
}

// wsClient is a WebSocket client whose messages are read into msgs by a
// goroutine of its own; msgs is closed when the connection ends.
type wsClient struct {
	id   string
	ws   *websocket.Conn
	msgs chan string
}

// dial connects a client called id to n, a member of rooms once
// n.conn(id) returns.
func (n *node) dial(t *testing.T, id string, rooms ...string) *wsClient {
	t.Helper()
	q := url.Values{"id": {id}, "room": rooms}
	u := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", n.name, err)
	}
	ws.SetReadLimit(1 << 20)
	c := &wsClient{id: id, ws: ws, msgs: make(chan string, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.msgs)
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
		<-done
	})
	n.conn(t, id)
	return c
}

// next returns the client's next message.
func (c *wsClient) next(t *testing.T) string {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			t.Fatalf("client %s: connection ended", c.id)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("client %s: no message within 5s", c.id)
		return ""
	}
}

// none asserts the client receives nothing for d.
func (c *wsClient) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		if ok {
			t.Fatalf("client %s: unexpected message %q", c.id, m)
		}
		t.Fatalf("client %s: connection ended", c.id)
	case <-time.After(d):
	}
}
