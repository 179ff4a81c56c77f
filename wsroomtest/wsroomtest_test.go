package wsroomtest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/wsroomtest"
)

// newManager returns a manager that is shut down when the test ends.
func newManager(t *testing.T, opts ...wsroom.Option) *wsroom.ConnectionManager {
	t.Helper()
	m, err := wsroom.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wsroomtest.DefaultTimeout)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

// chat is the handler the tests use: the tutorial's chat on wsroom.
func chat(t *testing.T, opts ...wsroom.Option) (*wsroom.ConnectionManager, http.Handler) {
	m := newManager(t, opts...)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := context.Background()
		id := r.PathValue("id")
		_, _ = m.Start(w, r, &wsroom.ConnectOptions{ID: id}, wsroom.Hooks{
			OnOpen: func(c *wsroom.Conn) {
				_ = m.Join(ctx, c, "chat")
				_ = m.Broadcast(ctx, "chat", wsroom.Text(id+" joined"))
			},
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				if msg.Type() != wsroom.MessageText {
					_ = m.Disconnect(c, websocket.StatusUnsupportedData, "text only")
					return
				}
				_ = m.Broadcast(ctx, "chat", wsroom.Text(id+": "+msg.Text()))
			},
			OnClose: func(c *wsroom.Conn, err error) { _ = m.Broadcast(ctx, "chat", wsroom.Text(id+" left")) },
		})
	})
	return m, mux
}

func TestClientsSeeEachOtherInOrder(t *testing.T) {
	wsroomtest.VerifyNoLeaks(t)
	_, h := chat(t)
	srv := wsroomtest.NewServer(t, h)
	ann := srv.Dial("/ws/ann")
	ann.ExpectMessage("ann joined")
	bob := srv.Dial("/ws/bob")
	ann.ExpectMessage("bob joined")
	bob.ExpectMessage("bob joined")
	bob.Send("hi")
	ann.ExpectMessage("bob: hi")
	bob.ExpectMessage("bob: hi")
	bob.Close()
	ann.ExpectMessage("bob left")
	ann.ExpectNoMessage(50 * time.Millisecond)
}

func TestMisbehavingPeers(t *testing.T) {
	m, h := chat(t, wsroom.WithWriteTimeout(500*time.Millisecond), wsroom.WithPing(100*time.Millisecond, 200*time.Millisecond))
	srv := wsroomtest.NewServer(t, h)
	ann := srv.Dial("/ws/ann")
	ann.ExpectMessage("ann joined")

	// A peer sending a binary message is closed with 1003.
	bin := srv.Dial("/ws/bin")
	ann.ExpectMessage("bin joined")
	bin.ExpectMessage("bin joined")
	bin.SendBinary([]byte{1, 2, 3})
	bin.ExpectClose(websocket.StatusUnsupportedData)
	ann.ExpectMessage("bin left")

	// A raw peer sending invalid UTF-8 is closed with 1007.
	raw := srv.DialRaw("/ws/raw")
	ann.ExpectMessage("raw joined")
	raw.WriteText("not \xff UTF-8")
	raw.ExpectClose(websocket.StatusInvalidFramePayloadData)
	ann.ExpectMessage("raw left")

	// A raw peer that never reads nor answers pings is dead.
	srv.DialRaw("/ws/dead")
	ann.ExpectMessage("dead joined")
	ann.ExpectMessage("dead left")

	// A client that stops reading is cut once its buffers are full.
	stalled := srv.Dial("/ws/stalled")
	ann.ExpectMessage("stalled joined")
	stalled.ExpectMessage("stalled joined")
	stalled.StopReading()
	big := strings.Repeat("x", 16<<10)
	for ctx := context.Background(); m.Stats().PingTimeouts+m.Stats().WriteTimeouts < 2; {
		_ = m.Broadcast(ctx, "chat", wsroom.Text(big))
		ann.ExpectMessage(big)
	}
	ann.ExpectMessage("stalled left")
}

func TestRefusedHandshakes(t *testing.T) {
	_, h := chat(t, wsroom.WithAllowedHosts("127.0.0.1"))
	srv := wsroomtest.NewServer(t, h)
	srv.ExpectHTTPStatus("/ws/eve", http.StatusForbidden, wsroomtest.Origin("http://evil.example"))
	srv.ExpectHTTPStatus("/ws/eve", http.StatusForbidden, wsroomtest.Host("evil.example"))
	srv.ExpectHTTPStatus("/ws/"+strings.Repeat("x", 256), http.StatusBadRequest)
}

// TestNextWithinReportsWhatCameAndWhyTheConnectionEnded pins NextWithin
// and Err: a message, then nothing while the connection is open (no
// error), then the close that ended it.
func TestNextWithinReportsWhatCameAndWhyTheConnectionEnded(t *testing.T) {
	_, h := chat(t)
	srv := wsroomtest.NewServer(t, h)
	ann := srv.Dial("/ws/ann")
	if typ, data, ok, err := ann.NextWithin(wsroomtest.DefaultTimeout); !ok || typ != websocket.MessageText || string(data) != "ann joined" || err != nil {
		t.Fatalf("NextWithin: %v %q %v %v, want the join line", typ, data, ok, err)
	}
	if _, data, ok, err := ann.NextWithin(50 * time.Millisecond); ok || err != nil || ann.Err() != nil {
		t.Fatalf("NextWithin on a quiet open connection: %q %v %v (Err %v), want nothing and no error", data, ok, err, ann.Err())
	}
	ann.SendBinary([]byte{1}) // the handler closes with 1003 on binary
	if _, data, ok, err := ann.NextWithin(wsroomtest.DefaultTimeout); ok || websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("NextWithin after the close: %q %v %v, want the close 1003", data, ok, err)
	}
	if websocket.CloseStatus(ann.Err()) != websocket.StatusUnsupportedData {
		t.Fatalf("Err = %v, want the close 1003", ann.Err())
	}
}
