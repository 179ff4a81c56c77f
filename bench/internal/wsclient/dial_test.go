package wsclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestDialAgainstCoderWebsocket runs a handshake, a ping, a fragmented
// message, an echo and a close handshake against coder/websocket.
func TestDialAgainstCoderWebsocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serverDone := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serverDone <- serveScript(ctx, w, r)
	}))
	defer srv.Close()

	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws/c0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	// The server pings first and waits for our pong while we read.
	op, msg, err := c.ReadMessage()
	if err != nil || op != OpText || string(msg) != "fragmented hello" {
		t.Fatalf("got %v %q %v", op, msg, err)
	}
	if err := c.WriteText([]byte("echo me")); err != nil {
		t.Fatal(err)
	}
	op, msg, err = c.ReadMessage()
	if err != nil || op != OpText || string(msg) != "echo me" {
		t.Fatalf("echo: got %v %q %v", op, msg, err)
	}
	_, _, err = c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != int(websocket.StatusGoingAway) || ce.Reason != "done" {
		t.Fatalf("got %v, want close 1001 \"done\"", err)
	}
	if err := <-serverDone; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func serveScript(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	// Ping returns once a concurrent Read has seen the pong.
	type readResult struct {
		typ websocket.MessageType
		msg []byte
		err error
	}
	read := make(chan readResult, 1)
	go func() {
		typ, msg, err := conn.Read(ctx)
		read <- readResult{typ, msg, err}
	}()
	if err := conn.Ping(ctx); err != nil {
		return err
	}

	wr, err := conn.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for _, part := range []string{"fragmented", " ", "hello"} {
		if _, err := wr.Write([]byte(part)); err != nil {
			return err
		}
	}
	if err := wr.Close(); err != nil {
		return err
	}
	res := <-read
	if res.err != nil {
		return res.err
	}
	typ, msg := res.typ, res.msg
	if err := conn.Write(ctx, typ, msg); err != nil {
		return err
	}
	return conn.Close(websocket.StatusGoingAway, "done")
}
