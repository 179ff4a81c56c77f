package wsroomtest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/wsroomtest"
)

// roomsHandler serves /ws/{id}?room=NAME on m: a client joins its room,
// and the room hears "ID (SUBJECT) joined", "ID: TEXT" and "ID left".
func roomsHandler(t *testing.T, opts ...wsroom.Option) (*wsroom.ConnectionManager, http.Handler) {
	m := newManager(t, opts...)
	return m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, id, room := context.Background(), strings.TrimPrefix(r.URL.Path, "/ws/"), r.URL.Query().Get("room")
		_, _ = m.Start(w, r, &wsroom.ConnectOptions{ID: id}, wsroom.Hooks{
			OnOpen: func(c *wsroom.Conn) {
				_ = m.Join(ctx, c, room)
				_ = m.Broadcast(ctx, room, wsroom.Text(id+" ("+c.Identity().Subject+") joined"))
			},
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				_ = m.Broadcast(ctx, room, wsroom.Text(id+": "+msg.Text()))
			},
			OnClose: func(c *wsroom.Conn, err error) { _ = m.Broadcast(ctx, room, wsroom.Text(id+" left")) },
		})
	})
}

// TestDialClientsWithIDsRoomsCookiesAndTokens dials a room's worth of
// clients, each with its ID in the path, its room in the query and its
// credential in a cookie or a token, and checks that each room hears its
// own members only, under the identity each credential gave.
func TestDialClientsWithIDsRoomsCookiesAndTokens(t *testing.T) {
	_, h := roomsHandler(t, wsroom.WithAuthenticator(wsroom.CookieOrToken("session", "token",
		func(_ context.Context, credential string) (wsroom.Identity, error) {
			return wsroom.Identity{Subject: "user-" + credential}, nil
		})))
	srv := wsroomtest.NewServer(t, h)
	clients := map[string]*wsroomtest.Client{}
	for i, id := range []string{"ann", "bob", "cat", "dan"} {
		room := []string{"red", "blue"}[i%2]
		var credential wsroomtest.DialOption
		if i < 2 {
			credential = wsroomtest.Cookie("session", id)
		} else {
			credential = wsroomtest.Subprotocols("wsroom", wsroom.TokenSubprotocol+id)
		}
		clients[id] = srv.Dial("/ws/"+id+"?room="+room, credential)
		clients[id].ExpectMessage(id + " (user-" + id + ") joined")
	}
	eve := srv.Dial("/ws/eve?room=red&token=eve")
	eve.ExpectMessage("eve (user-eve) joined")
	clients["ann"].ExpectMessages("cat (user-cat) joined", "eve (user-eve) joined")
	clients["cat"].ExpectMessage("eve (user-eve) joined")
	clients["bob"].ExpectMessage("dan (user-dan) joined")

	clients["dan"].Send("blue only")
	clients["bob"].ExpectMessage("dan: blue only")
	clients["dan"].ExpectMessage("dan: blue only")
	clients["ann"].ExpectNoMessage(50 * time.Millisecond)
	clients["cat"].ExpectNoMessage(0)

	srv.ExpectHTTPStatus("/ws/nobody?room=red", http.StatusForbidden)
	srv.ExpectHTTPStatus("/ws/nobody?room=red", http.StatusForbidden, wsroomtest.Cookie("session", ""))
}

// TestRawClientIsADeadPeer: a raw client never answers the server's ping,
// so the server drops it for a ping timeout, without a close frame.
func TestRawClientIsADeadPeer(t *testing.T) {
	m, h := roomsHandler(t, wsroom.WithPing(50*time.Millisecond, 100*time.Millisecond))
	srv := wsroomtest.NewServer(t, h)
	dead := srv.DialRaw("/ws/dead?room=r")
	if f, err := dead.ReadFrame(); err != nil || f.Opcode != wsroomtest.OpText || string(f.Payload) != "dead () joined" {
		t.Fatalf("got %+v, %v; want the join line", f, err)
	}
	pings := 0
	for {
		f, err := dead.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			break
		}
		if err != nil {
			t.Fatalf("after %d pings: %v, want the connection dropped", pings, err)
		}
		if f.Opcode != wsroomtest.OpPing || !f.Unmasked {
			t.Fatalf("got %+v, want a ping from the server", f)
		}
		pings++
	}
	if s := m.Stats(); pings == 0 || s.PingTimeouts != 1 || s.WriteTimeouts != 0 {
		t.Fatalf("%d pings, %d ping timeouts, %d write timeouts; want pings, then one ping timeout", pings, s.PingTimeouts, s.WriteTimeouts)
	}
}

// TestRawClientReset: the server's read fails with a connection reset,
// not the end of a stream that a plain close gives.
func TestRawClientReset(t *testing.T) {
	readErr := make(chan error, 1)
	srv := wsroomtest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			readErr <- err
			return
		}
		defer c.CloseNow()
		if err := c.Write(r.Context(), websocket.MessageText, []byte("ready")); err != nil {
			readErr <- err
			return
		}
		_, _, err = c.Read(context.Background())
		readErr <- err
	}))
	raw := srv.DialRaw("/")
	raw.ExpectText("ready")
	raw.Reset()
	select {
	case err := <-readErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server read: %v, want a connection reset", err)
		}
	case <-time.After(srv.Timeout):
		t.Fatal("the server's read still waits")
	}
}

// TestTryDialReturnsTheRefusal: a refused handshake's response comes
// back, and a retry succeeds once the server has room.
func TestTryDialReturnsTheRefusal(t *testing.T) {
	_, h := roomsHandler(t, wsroom.WithMaxConnections(1))
	srv := wsroomtest.NewServer(t, h)
	ann, _, err := srv.TryDial("/ws/ann?room=r")
	if err != nil {
		t.Fatal(err)
	}
	ann.ExpectMessage("ann () joined")
	c, resp, err := srv.TryDial("/ws/bob?room=r")
	if c != nil || err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second client: %v, %v; want HTTP 503", resp, err)
	}
	ann.Close()
	// The server frees the slot after the close handshake, at a moment
	// the client cannot see: retry.
	deadline := time.Now().Add(srv.Timeout)
	for {
		bob, _, err := srv.TryDial("/ws/bob?room=r")
		if err == nil {
			bob.ExpectMessage("bob () joined")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after ann left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGetSendsAPlainRequest: Get is an HTTP request with the options'
// headers, not a handshake, so a WebSocket endpoint answers it 426.
func TestGetSendsAPlainRequest(t *testing.T) {
	_, ws := roomsHandler(t)
	mux := http.NewServeMux()
	mux.Handle("/ws/", ws)
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("session")
		w.Header().Set("X-Seen", "yes")
		_, _ = io.WriteString(w, r.Host+" "+r.Header.Get("Origin")+" "+c.String()+" "+r.Header.Get("Upgrade"))
	})
	srv := wsroomtest.NewServer(t, mux)
	resp, body := srv.Get("/headers", wsroomtest.Host("chat.example"), wsroomtest.Origin("http://chat.example"), wsroomtest.Cookie("session", "s1"))
	if want := "chat.example http://chat.example session=s1 "; resp.StatusCode != http.StatusOK || body != want || resp.Header.Get("X-Seen") != "yes" {
		t.Fatalf("HTTP %d, body %q; want 200, %q", resp.StatusCode, body, want)
	}
	if resp, _ := srv.Get("/ws/ann?room=r"); resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("GET on the WebSocket endpoint: HTTP %d, want 426", resp.StatusCode)
	}
}

// TestAtUsesAServerItDoesNotOwn: At dials a server the test runs itself,
// and leaves it running when the test using it ends.
func TestAtUsesAServerItDoesNotOwn(t *testing.T) {
	_, h := roomsHandler(t)
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: wsroomtest.DefaultTimeout}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	url := "http://" + ln.Addr().String()

	t.Run("uses", func(t *testing.T) {
		srv := wsroomtest.At(t, url)
		if srv.Addr() != ln.Addr().String() || srv.WSURL("/ws/x") != "ws://"+ln.Addr().String()+"/ws/x" {
			t.Fatalf("Addr %s, WSURL %s", srv.Addr(), srv.WSURL("/ws/x"))
		}
		ann := srv.Dial("/ws/ann?room=r")
		ann.ExpectMessage("ann () joined")
		raw := srv.DialRaw("/ws/raw?room=r")
		raw.ExpectText("raw () joined")
		ann.ExpectMessage("raw () joined")
	})
	srv := wsroomtest.At(t, url)
	bob := srv.Dial("/ws/bob?room=r")
	bob.ExpectMessage("bob () joined")
}
