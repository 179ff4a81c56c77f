package wsroom_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
)

// dial opens a client connection to the test server at url+path.
func dial(ctx context.Context, url, path string, opts *websocket.DialOptions) *websocket.Conn {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+path, opts)
	if err != nil {
		panic(err)
	}
	return c
}

// read returns the next text message c receives.
func read(ctx context.Context, c *websocket.Conn) string {
	_, b, err := c.Read(ctx)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// A chat room: every message is broadcast to the room, the sender's copy
// included, and the sender then gets a personal reply, as in the tutorial.
func ExampleConnectionManager_Broadcast() {
	m, _ := wsroom.New()
	joined := make(chan struct{}, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, &wsroom.ConnectOptions{ID: r.PathValue("id")})
		if err != nil {
			return
		}
		ctx := context.Background()
		if err := m.Join(ctx, c, "chat"); err != nil {
			return
		}
		joined <- struct{}{}
		for {
			msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			_ = m.Broadcast(ctx, "chat", wsroom.Text(c.ID()+" says "+msg.Text()))
			_ = m.SendPersonal(ctx, c, wsroom.Text("you said "+msg.Text()))
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ann := dial(ctx, srv.URL, "/ws/ann", nil)
	<-joined
	bob := dial(ctx, srv.URL, "/ws/bob", nil)
	<-joined
	_ = ann.Write(ctx, websocket.MessageText, []byte("hi"))

	fmt.Println("ann:", read(ctx, ann))
	fmt.Println("ann:", read(ctx, ann))
	fmt.Println("bob:", read(ctx, bob))
	ann.CloseNow()
	bob.CloseNow()
	_ = m.Shutdown(ctx)
	// Output:
	// ann: ann says hi
	// ann: you said hi
	// bob: ann says hi
}

// Broadcast leaves out the connections it is given after the message:
// here the sender.
func ExampleConnectionManager_Broadcast_except() {
	m, _ := wsroom.New()
	joined := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, &wsroom.ConnectOptions{ID: r.URL.Query().Get("id")})
		if err != nil {
			return
		}
		if err := m.Join(context.Background(), c, "chat"); err != nil {
			return
		}
		joined <- struct{}{}
		for {
			msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			_ = m.Broadcast(context.Background(), "chat", wsroom.Text(c.ID()+": "+msg.Text()), c)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ann := dial(ctx, srv.URL, "/?id=ann", nil)
	<-joined
	bob := dial(ctx, srv.URL, "/?id=bob", nil)
	<-joined
	_ = ann.Write(ctx, websocket.MessageText, []byte("hello"))
	_ = bob.Write(ctx, websocket.MessageText, []byte("hi ann"))
	fmt.Println("bob got:", read(ctx, bob))
	fmt.Println("ann got:", read(ctx, ann))
	ann.CloseNow()
	bob.CloseNow()
	_ = m.Shutdown(ctx)
	// Output:
	// bob got: ann: hello
	// ann got: bob: hi ann
}

// Start runs the read loop for the handler: the hooks get the connection
// once it is open, each message, and its end. Here the tutorial's chat,
// with its join and leave lines.
func ExampleConnectionManager_Start() {
	m, _ := wsroom.New()
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		_, _ = m.Start(w, r, &wsroom.ConnectOptions{ID: id}, wsroom.Hooks{
			OnOpen: func(c *wsroom.Conn) {
				_ = m.Join(ctx, c, "chat")
				_ = m.Broadcast(ctx, "chat", wsroom.Text(id+" joined"))
			},
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				_ = m.Broadcast(ctx, "chat", wsroom.Text(id+" says "+msg.Text()))
			},
			OnClose: func(c *wsroom.Conn, err error) {
				_ = m.Broadcast(ctx, "chat", wsroom.Text(id+" left"))
			},
		})
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ann := dial(ctx, srv.URL, "/?id=ann", nil)
	fmt.Println("ann:", read(ctx, ann))
	bob := dial(ctx, srv.URL, "/?id=bob", nil)
	fmt.Println("ann:", read(ctx, ann))
	_ = bob.Write(ctx, websocket.MessageText, []byte("hi"))
	fmt.Println("ann:", read(ctx, ann))
	_ = bob.Close(websocket.StatusNormalClosure, "")
	fmt.Println("ann:", read(ctx, ann))
	ann.CloseNow()
	_ = m.Shutdown(ctx)
	// Output:
	// ann: ann joined
	// ann: bob joined
	// ann: bob says hi
	// ann: bob left
}

// SendPersonal answers one connection: here an echo server.
func ExampleConnectionManager_SendPersonal() {
	m, _ := wsroom.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, nil)
		if err != nil {
			return
		}
		for {
			msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			_ = m.SendPersonal(context.Background(), c, wsroom.Text("echo: "+msg.Text()))
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := dial(ctx, srv.URL, "/", nil)
	_ = c.Write(ctx, websocket.MessageText, []byte("hello"))
	fmt.Println(read(ctx, c))
	c.CloseNow()
	_ = m.Shutdown(ctx)
	// Output: echo: hello
}

// CookieOrToken is the tutorial's dependency: a session cookie, or else a
// token query parameter (or a "wsroom.token." subprotocol entry), checked
// by verify. Without either, the handshake is refused with HTTP 403.
func ExampleCookieOrToken() {
	auth := wsroom.CookieOrToken("session", "token", func(ctx context.Context, credential string) (wsroom.Identity, error) {
		if credential != "s3cret" {
			return wsroom.Identity{}, errors.New("unknown credential")
		}
		return wsroom.Identity{Subject: "ann"}, nil
	})
	m, _ := wsroom.New(wsroom.WithAuthenticator(auth))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, nil)
		if err != nil {
			return // already answered with 403
		}
		_ = m.SendPersonal(context.Background(), c, wsroom.Text("hello "+c.Identity().Subject))
		_, _ = c.Read(context.Background())
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	_, resp, err := websocket.Dial(ctx, url+"/?token=wrong", nil)
	fmt.Println("wrong token:", resp.StatusCode, err != nil)

	c := dial(ctx, srv.URL, "/?token=s3cret", nil)
	fmt.Println("right token:", read(ctx, c))
	c.CloseNow()
	_ = m.Shutdown(ctx)
	// Output:
	// wrong token: 403 true
	// right token: hello ann
}

// Shutdown refuses new connections, flushes what is queued and closes every
// connection with 1001 (Going Away).
func ExampleConnectionManager_Shutdown() {
	m, _ := wsroom.New()
	connected := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, nil)
		if err != nil {
			return
		}
		_ = m.SendPersonal(context.Background(), c, wsroom.Text("welcome"))
		close(connected)
		_, _ = c.Read(context.Background())
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := dial(ctx, srv.URL, "/", nil)
	<-connected
	done := make(chan error, 1)
	go func() { done <- m.Shutdown(ctx) }()
	fmt.Println(read(ctx, c))
	_, _, err := c.Read(ctx)
	fmt.Println("close code:", int(websocket.CloseStatus(err)))
	fmt.Println("shutdown:", <-done)
	// Output:
	// welcome
	// close code: 1001
	// shutdown: <nil>
}
