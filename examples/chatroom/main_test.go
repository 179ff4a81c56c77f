package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// startServer serves the demo with cfg (the defaults when nil) on an
// httptest server and returns it with the demo's manager.
func startServer(t *testing.T, cfg *demo.Config) (*wsroomtest.Server, *wsroom.ConnectionManager) {
	t.Helper()
	if cfg == nil {
		c := demo.DefaultConfig()
		cfg = &c
	}
	app, err := newApp(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return demotest.Serve(t, app), app.Manager
}

// TestChatTutorialScenario replays BEHAVIOUR.md §3: A, B and C join; B
// says hi; C leaves; A sends 你好 🍍, an empty message and 2 MiB; A leaves.
// Each client's messages are checked exactly and in order: a joiner sees
// its own join line, a sender gets the room's copy before its personal
// reply, and a leaver does not get its own leave line.
func TestChatTutorialScenario(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	b := srv.Dial("/ws/B")
	b.ExpectMessage("B 进入了聊天室")
	a.ExpectMessage("B 进入了聊天室")
	c := srv.Dial("/ws/C")
	c.ExpectMessage("C 进入了聊天室")
	a.ExpectMessage("C 进入了聊天室")
	b.ExpectMessage("C 进入了聊天室")

	b.Send("hi")
	b.ExpectMessages("B 发送消息:hi", "服务端回复B:你发送的信息是:hi")
	a.ExpectMessage("B 发送消息:hi")
	c.ExpectMessage("B 发送消息:hi")

	if err := c.CloseWith(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close C: %v", err)
	}
	a.ExpectMessage("C 离开了聊天室")
	b.ExpectMessage("C 离开了聊天室")

	big := strings.Repeat("a", 2<<20)
	for _, msg := range []string{"你好 🍍", "", big} {
		a.Send(msg)
		a.ExpectMessages("A 发送消息:"+msg, "服务端回复A:你发送的信息是:"+msg)
		b.ExpectMessage("A 发送消息:" + msg)
	}

	if err := a.CloseWith(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close A: %v", err)
	}
	b.ExpectMessage("A 离开了聊天室")
	if err := b.CloseWith(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close B: %v", err)
	}
}

// TestChatEnglish: -lang en keeps the order and changes the words.
func TestChatEnglish(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.Lang = "en"
	srv, _ := startServer(t, &cfg)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A joined the chat")
	b := srv.Dial("/ws/B")
	a.ExpectMessage("B joined the chat")
	a.Send("hi")
	a.ExpectMessages("A says: hi", "Server to A: you sent: hi")
	b.ExpectMessages("B joined the chat", "A says: hi")
	a.Close()
	b.ExpectMessage("A left the chat")
}

// TestChatDuplicateIDs: two clients may share an ID, as in the tutorial,
// and each is still its own connection.
func TestChatDuplicateIDs(t *testing.T) {
	srv, _ := startServer(t, nil)
	x1 := srv.Dial("/ws/X")
	x1.ExpectMessage("X 进入了聊天室")
	x2 := srv.Dial("/ws/X")
	x2.ExpectMessage("X 进入了聊天室")
	x1.ExpectMessage("X 进入了聊天室")
	if got := roomMembers(t, srv, ""); strings.Join(got, ",") != "X,X" {
		t.Errorf("members %q, want X twice", got)
	}

	x1.Send("yo")
	x1.ExpectMessages("X 发送消息:yo", "服务端回复X:你发送的信息是:yo")
	x2.ExpectMessage("X 发送消息:yo")

	x2.Close()
	x1.ExpectMessage("X 离开了聊天室")
	x1.Send("alone")
	x1.ExpectMessages("X 发送消息:alone", "服务端回复X:你发送的信息是:alone")
}

// TestChatBinaryFrameDoesNotPoisonRoom fixes the tutorial's chat_poison
// scenario: D's binary frame closes D with 1003, D leaves the room, and E
// and a later joiner F go on chatting.
func TestChatBinaryFrameDoesNotPoisonRoom(t *testing.T) {
	srv, m := startServer(t, nil)
	d := srv.Dial("/ws/D")
	d.ExpectMessage("D 进入了聊天室")
	e := srv.Dial("/ws/E")
	e.ExpectMessage("E 进入了聊天室")
	d.ExpectMessage("E 进入了聊天室")

	d.SendBinary([]byte("\x00\x01binary\xff"))
	d.ExpectClose(websocket.StatusUnsupportedData)
	e.ExpectMessage("D 离开了聊天室")

	e.Send("after")
	e.ExpectMessages("E 发送消息:after", "服务端回复E:你发送的信息是:after")

	f := srv.Dial("/ws/F")
	f.ExpectMessage("F 进入了聊天室")
	e.ExpectMessage("F 进入了聊天室")
	f.Send("hello")
	f.ExpectMessages("F 发送消息:hello", "服务端回复F:你发送的信息是:hello")
	e.ExpectMessage("F 发送消息:hello")
	if n := len(m.Members(defaultRoom)); n != 2 {
		t.Errorf("room has %d members, want 2 (E, F)", n)
	}
}

// TestChatPeerDyingMidBroadcastSparesSender: a peer whose TCP connection
// is reset while the room is busy is dropped alone; the sender and the
// other members get every message.
func TestChatPeerDyingMidBroadcastSparesSender(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	w := srv.Dial("/ws/W")
	w.ExpectMessage("W 进入了聊天室")
	a.ExpectMessage("W 进入了聊天室")

	p := srv.DialRaw("/ws/P")
	p.ExpectText("P 进入了聊天室")
	a.ExpectMessage("P 进入了聊天室")
	w.ExpectMessage("P 进入了聊天室")

	const n = 200
	for i := range n {
		a.Send(msgN(i))
		if i == n/4 {
			// Reset P's connection (RST, no close frame) while the
			// sender is mid-stream.
			p.Reset()
		}
	}
	expectAround(t, a, 2*n, func(i int) string {
		if i%2 == 0 {
			return "A 发送消息:" + msgN(i/2)
		}
		return "服务端回复A:你发送的信息是:" + msgN(i/2)
	}, "P 离开了聊天室")
	expectAround(t, w, n, func(i int) string { return "A 发送消息:" + msgN(i) }, "P 离开了聊天室")
}

func msgN(i int) string { return fmt.Sprintf("m%04d", i) }

// expectAround checks that the next messages are want(0) to want(n-1), in
// order, with the text extra exactly once anywhere among them or right
// after them.
func expectAround(t *testing.T, c *wsroomtest.Client, n int, want func(i int) string, extra string) {
	t.Helper()
	seenExtra := false
	for i := 0; i < n || !seenExtra; {
		typ, data := c.Next()
		got := string(data)
		if typ == websocket.MessageText && got == extra && !seenExtra {
			seenExtra = true
			continue
		}
		if i == n || typ != websocket.MessageText || got != want(i) {
			t.Fatalf("after %d of %d messages: got a %v message %s", i, n, typ, demotest.Abbrev(got))
		}
		i++
	}
}

// TestChatRooms: ?room= keeps conversations apart, and /members lists a
// room's members on this server.
func TestChatRooms(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	x := srv.Dial("/ws/X?room=other")
	x.ExpectMessage("X 进入了聊天室")
	b := srv.Dial("/ws/B?room=chat")
	b.ExpectMessage("B 进入了聊天室")
	a.ExpectMessage("B 进入了聊天室")

	if got := roomMembers(t, srv, ""); strings.Join(got, ",") != "A,B" {
		t.Errorf("members of chat: %q", got)
	}
	if got := roomMembers(t, srv, "other"); strings.Join(got, ",") != "X" {
		t.Errorf("members of other: %q", got)
	}
	if got := roomMembers(t, srv, "empty"); len(got) != 0 {
		t.Errorf("members of empty: %q", got)
	}

	x.Send("elsewhere")
	x.ExpectMessages("X 发送消息:elsewhere", "服务端回复X:你发送的信息是:elsewhere")
	x.Close()
	a.Send("here")
	// Neither X's message nor its leave line reached this room.
	a.ExpectMessages("A 发送消息:here", "服务端回复A:你发送的信息是:here")
	b.ExpectMessage("A 发送消息:here")
}

// roomMembers returns the members of room that /members lists.
func roomMembers(t *testing.T, srv *wsroomtest.Server, room string) []string {
	t.Helper()
	resp, data := srv.Get("/members?room=" + room)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /members: HTTP %d", resp.StatusCode)
	}
	var body struct {
		Room    string   `json:"room"`
		Members []string `json:"members"`
	}
	if err := json.Unmarshal([]byte(data), &body); err != nil {
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
	for path, status := range map[string]int{
		"/":              http.StatusOK,
		"/nope":          http.StatusNotFound,
		"/ws":            http.StatusNotFound,
		"/ws/":           http.StatusNotFound,
		"/ws/a/b":        http.StatusNotFound,
		"/ws/A":          http.StatusUpgradeRequired,
		"/ws/A?room=%FF": http.StatusBadRequest,
		"/members?room=" + strings.Repeat("r", 256): http.StatusBadRequest,
	} {
		if resp, _ := srv.Get(path); resp.StatusCode != status {
			t.Errorf("GET %.40s: HTTP %d, want %d", path, resp.StatusCode, status)
		}
	}
	srv.ExpectHTTPStatus("/ws/A", http.StatusForbidden, wsroomtest.Origin("http://evil.example"))
}

// TestChatShutdownSends1001 stops the demo as SIGINT would: every client
// gets 1001 and Run returns nil (exit status 0).
func TestChatShutdownSends1001(t *testing.T) {
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, stop := demotest.Run(t, app, cfg)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	b := srv.Dial("/ws/B?room=other")
	b.ExpectMessage("B 进入了聊天室")
	done := stop()
	a.ExpectClose(wsroom.StatusShutdown)
	b.ExpectClose(wsroom.StatusShutdown)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
