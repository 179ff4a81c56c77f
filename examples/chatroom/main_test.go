package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
)

// startServer serves the demo with cfg (the defaults when nil) on an
// httptest server and returns it with the demo's manager.
func startServer(t *testing.T, cfg *demo.Config) (*httptest.Server, *wsroom.ConnectionManager) {
	t.Helper()
	if cfg == nil {
		c := demo.DefaultConfig()
		cfg = &c
	}
	app, err := newApp(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := demotest.Serve(t, app)
	return srv, app.Manager
}

func join(t *testing.T, srv *httptest.Server, path string) *websocket.Conn {
	t.Helper()
	return demotest.Dial(t, demotest.WSURL(srv.URL, path), nil)
}

// TestChatTutorialScenario replays BEHAVIOUR.md §3: A, B and C join; B
// says hi; C leaves; A sends 你好 🍍, an empty message and 2 MiB; A leaves.
// Each client's messages are checked exactly and in order: a joiner sees
// its own join line, a sender gets the room's copy before its personal
// reply, and a leaver does not get its own leave line.
func TestChatTutorialScenario(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A 进入了聊天室")
	b := join(t, srv, "/ws/B")
	demotest.Expect(t, b, "B 进入了聊天室")
	demotest.Expect(t, a, "B 进入了聊天室")
	c := join(t, srv, "/ws/C")
	demotest.Expect(t, c, "C 进入了聊天室")
	demotest.Expect(t, a, "C 进入了聊天室")
	demotest.Expect(t, b, "C 进入了聊天室")

	demotest.Send(t, b, "hi")
	demotest.Expect(t, b, "B 发送消息:hi", "服务端回复B:你发送的信息是:hi")
	demotest.Expect(t, a, "B 发送消息:hi")
	demotest.Expect(t, c, "B 发送消息:hi")

	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close C: %v", err)
	}
	demotest.Expect(t, a, "C 离开了聊天室")
	demotest.Expect(t, b, "C 离开了聊天室")

	big := strings.Repeat("a", 2<<20)
	for _, msg := range []string{"你好 🍍", "", big} {
		demotest.Send(t, a, msg)
		demotest.Expect(t, a, "A 发送消息:"+msg, "服务端回复A:你发送的信息是:"+msg)
		demotest.Expect(t, b, "A 发送消息:"+msg)
	}

	if err := a.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close A: %v", err)
	}
	demotest.Expect(t, b, "A 离开了聊天室")
	if err := b.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close B: %v", err)
	}
}

// TestChatEnglish: -lang en keeps the order and changes the words.
func TestChatEnglish(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.Lang = "en"
	srv, _ := startServer(t, &cfg)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A joined the chat")
	b := join(t, srv, "/ws/B")
	demotest.Expect(t, a, "B joined the chat")
	demotest.Send(t, a, "hi")
	demotest.Expect(t, a, "A says: hi", "Server to A: you sent: hi")
	demotest.Expect(t, b, "B joined the chat", "A says: hi")
	demotest.Close(t, a)
	demotest.Expect(t, b, "A left the chat")
}

// TestChatDuplicateIDs: two clients may share an ID, as in the tutorial,
// and each is still its own connection.
func TestChatDuplicateIDs(t *testing.T) {
	srv, _ := startServer(t, nil)
	x1 := join(t, srv, "/ws/X")
	demotest.Expect(t, x1, "X 进入了聊天室")
	x2 := join(t, srv, "/ws/X")
	demotest.Expect(t, x2, "X 进入了聊天室")
	demotest.Expect(t, x1, "X 进入了聊天室")
	if got := members(t, srv, ""); strings.Join(got, ",") != "X,X" {
		t.Errorf("members %q, want X twice", got)
	}

	demotest.Send(t, x1, "yo")
	demotest.Expect(t, x1, "X 发送消息:yo", "服务端回复X:你发送的信息是:yo")
	demotest.Expect(t, x2, "X 发送消息:yo")

	demotest.Close(t, x2)
	demotest.Expect(t, x1, "X 离开了聊天室")
	demotest.Send(t, x1, "alone")
	demotest.Expect(t, x1, "X 发送消息:alone", "服务端回复X:你发送的信息是:alone")
}

// TestChatBinaryFrameDoesNotPoisonRoom fixes the tutorial's chat_poison
// scenario: D's binary frame closes D with 1003, D leaves the room, and E
// and a later joiner F go on chatting.
func TestChatBinaryFrameDoesNotPoisonRoom(t *testing.T) {
	srv, m := startServer(t, nil)
	d := join(t, srv, "/ws/D")
	demotest.Expect(t, d, "D 进入了聊天室")
	e := join(t, srv, "/ws/E")
	demotest.Expect(t, e, "E 进入了聊天室")
	demotest.Expect(t, d, "E 进入了聊天室")

	if err := d.Write(context.Background(), websocket.MessageBinary, []byte("\x00\x01binary\xff")); err != nil {
		t.Fatal(err)
	}
	demotest.ExpectClose(t, d, websocket.StatusUnsupportedData)
	demotest.Expect(t, e, "D 离开了聊天室")

	demotest.Send(t, e, "after")
	demotest.Expect(t, e, "E 发送消息:after", "服务端回复E:你发送的信息是:after")

	f := join(t, srv, "/ws/F")
	demotest.Expect(t, f, "F 进入了聊天室")
	demotest.Expect(t, e, "F 进入了聊天室")
	demotest.Send(t, f, "hello")
	demotest.Expect(t, f, "F 发送消息:hello", "服务端回复F:你发送的信息是:hello")
	demotest.Expect(t, e, "F 发送消息:hello")
	if n := len(m.Members(defaultRoom)); n != 2 {
		t.Errorf("room has %d members, want 2 (E, F)", n)
	}
}

// TestChatPeerDyingMidBroadcastSparesSender: a peer whose TCP connection
// is reset while the room is busy is dropped alone; the sender and the
// other members get every message.
func TestChatPeerDyingMidBroadcastSparesSender(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A 进入了聊天室")
	w := join(t, srv, "/ws/W")
	demotest.Expect(t, w, "W 进入了聊天室")
	demotest.Expect(t, a, "W 进入了聊天室")

	var victimConn net.Conn
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		victimConn = conn
		return conn, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), demotest.Timeout)
	defer cancel()
	p, _, err := websocket.Dial(ctx, demotest.WSURL(srv.URL, "/ws/P"), &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseNow()
	demotest.Expect(t, p, "P 进入了聊天室")
	demotest.Expect(t, a, "P 进入了聊天室")
	demotest.Expect(t, w, "P 进入了聊天室")

	const n = 200
	for i := range n {
		demotest.Send(t, a, msgN(i))
		if i == n/4 {
			// Reset P's connection (RST, no close frame) while the
			// sender is mid-stream.
			if err := victimConn.(*net.TCPConn).SetLinger(0); err != nil {
				t.Fatal(err)
			}
			if err := victimConn.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wantA, wantW []string
	for i := range n {
		wantA = append(wantA, "A 发送消息:"+msgN(i), "服务端回复A:你发送的信息是:"+msgN(i))
		wantW = append(wantW, "A 发送消息:"+msgN(i))
	}
	expectAround(t, a, wantA, "P 离开了聊天室")
	expectAround(t, w, wantW, "P 离开了聊天室")
}

func msgN(i int) string { return fmt.Sprintf("m%04d", i) }

// expectAround reads until it has seen want, in order, and the line extra
// exactly once, anywhere among them.
func expectAround(t *testing.T, c *websocket.Conn, want []string, extra string) {
	t.Helper()
	seenExtra := false
	for i := 0; i < len(want) || !seenExtra; {
		got := demotest.Read(t, c)
		if got == extra && !seenExtra {
			seenExtra = true
			continue
		}
		if i == len(want) || got != want[i] {
			t.Fatalf("after %d of %d messages: got %s", i, len(want), demotest.Abbrev(got))
		}
		i++
	}
}

// TestChatRooms: ?room= keeps conversations apart, and /members lists a
// room's members on this server.
func TestChatRooms(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A 进入了聊天室")
	x := join(t, srv, "/ws/X?room=other")
	demotest.Expect(t, x, "X 进入了聊天室")
	b := join(t, srv, "/ws/B?room=chat")
	demotest.Expect(t, b, "B 进入了聊天室")
	demotest.Expect(t, a, "B 进入了聊天室")

	if got := members(t, srv, ""); strings.Join(got, ",") != "A,B" {
		t.Errorf("members of chat: %q", got)
	}
	if got := members(t, srv, "other"); strings.Join(got, ",") != "X" {
		t.Errorf("members of other: %q", got)
	}
	if got := members(t, srv, "empty"); len(got) != 0 {
		t.Errorf("members of empty: %q", got)
	}

	demotest.Send(t, x, "elsewhere")
	demotest.Expect(t, x, "X 发送消息:elsewhere", "服务端回复X:你发送的信息是:elsewhere")
	demotest.Close(t, x)
	demotest.Send(t, a, "here")
	// Neither X's message nor its leave line reached this room.
	demotest.Expect(t, a, "A 发送消息:here", "服务端回复A:你发送的信息是:here")
	demotest.Expect(t, b, "A 发送消息:here")
}

func members(t *testing.T, srv *httptest.Server, room string) []string {
	t.Helper()
	resp, err := http.Get(srv.URL + "/members?room=" + room)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Room    string   `json:"room"`
		Members []string `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if want := cmp(room, defaultRoom); body.Room != want {
		t.Errorf("room %q, want %q", body.Room, want)
	}
	return body.Members
}

func cmp(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// TestChatHTTP pins down the plain HTTP answers.
func TestChatHTTP(t *testing.T) {
	srv, _ := startServer(t, nil)
	demotest.ExpectStatuses(t, srv.URL, map[string]int{
		"/":              http.StatusOK,
		"/nope":          http.StatusNotFound,
		"/ws":            http.StatusNotFound,
		"/ws/":           http.StatusNotFound,
		"/ws/a/b":        http.StatusNotFound,
		"/ws/A":          http.StatusUpgradeRequired,
		"/ws/A?room=%FF": http.StatusBadRequest,
		"/members?room=" + strings.Repeat("r", 256): http.StatusBadRequest,
	})
	_, resp, err := demotest.TryDial(demotest.WSURL(srv.URL, "/ws/A"), http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Origin: %v, want HTTP 403", err)
	}
}

// TestChatShutdownSends1001 stops the demo as SIGINT would: every client
// gets 1001 and Run returns nil (exit status 0).
func TestChatShutdownSends1001(t *testing.T) {
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base, stop := demotest.Run(t, app, cfg)
	a := demotest.Dial(t, base+"/ws/A", nil)
	demotest.Expect(t, a, "A 进入了聊天室")
	b := demotest.Dial(t, base+"/ws/B?room=other", nil)
	demotest.Expect(t, b, "B 进入了聊天室")
	done := stop()
	demotest.ExpectClose(t, a, wsroom.StatusShutdown)
	demotest.ExpectClose(t, b, wsroom.StatusShutdown)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
