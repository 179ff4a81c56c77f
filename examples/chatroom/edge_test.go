package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/wsroomtest"
)

// TestChatInvalidUTF8ReachesNobody: one byte of invalid UTF-8 used to be
// relayed in "X says: …" to every page in the room, and a browser fails a
// connection that receives it. The sender is closed with 1007; the room
// gets nothing of it and stays connected.
func TestChatInvalidUTF8ReachesNobody(t *testing.T) {
	srv, m := startServer(t, nil)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	x := srv.DialRaw("/ws/X")
	a.ExpectMessage("X 进入了聊天室")
	x.ExpectText("X 进入了聊天室")
	x.WriteText("bad \xff")
	x.ExpectClose(websocket.StatusInvalidFramePayloadData)
	// The room sees X leave, and nothing X sent.
	a.ExpectMessage("X 离开了聊天室")
	a.Send("still here")
	a.ExpectMessages("A 发送消息:still here", "服务端回复A:你发送的信息是:still here")
	if s := m.Stats(); s.ProtocolErrors != 1 {
		t.Errorf("ProtocolErrors = %d, want 1", s.ProtocolErrors)
	}
}

// TestChatRefusesBadIDsAndRoomsBeforeTheUpgrade: a client_id or room that
// is not up to 255 bytes of UTF-8 would end up in every join line; it is
// refused with HTTP 400 and nobody hears of it.
func TestChatRefusesBadIDsAndRoomsBeforeTheUpgrade(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	for _, path := range []string{
		"/ws/%FF",
		"/ws/" + strings.Repeat("x", 256),
		"/ws/B?room=%FF",
		"/ws/B?room=" + strings.Repeat("r", 256),
	} {
		srv.ExpectHTTPStatus(path, http.StatusBadRequest)
	}
	b := srv.Dial("/ws/B")
	a.ExpectMessage("B 进入了聊天室") // the first line A gets after its own
	b.ExpectMessage("B 进入了聊天室")
}

// TestChatRefusesAForeignHost: a page on a name an attacker points at this
// server (DNS rebinding) has an Origin that matches its Host, so only the
// Host check stops it, on every route.
func TestChatRefusesAForeignHost(t *testing.T) {
	srv, m := startServer(t, nil)
	srv.ExpectHTTPStatus("/ws/E", http.StatusForbidden, wsroomtest.Host("evil.example:8080"), wsroomtest.Origin("http://evil.example:8080"))
	for _, path := range []string{"/", "/members"} {
		if resp, _ := srv.Get(path, wsroomtest.Host("evil.example")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s with a foreign Host: HTTP %d, want 403", path, resp.StatusCode)
		}
	}
	if n := m.Stats().Accepted; n != 0 {
		t.Errorf("%d connections accepted", n)
	}
	// -host adds a name.
	cfg := demo.DefaultConfig()
	cfg.Hosts = []string{"chat.example"}
	srv2, _ := startServer(t, &cfg)
	f := srv2.Dial("/ws/F", wsroomtest.Host("chat.example"))
	f.ExpectMessage("F 进入了聊天室")
	f.Close()
}

// TestChatMaxConnections: past -max-conns, a handshake gets HTTP 503.
func TestChatMaxConnections(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.MaxConnections = 1
	srv, _ := startServer(t, &cfg)
	a := srv.Dial("/ws/A")
	a.ExpectMessage("A 进入了聊天室")
	srv.ExpectHTTPStatus("/ws/B", http.StatusServiceUnavailable)
	a.Close()
	// Once A is gone, there is room again. The server frees A's slot
	// after the close handshake, at a moment no client sees: retry.
	deadline := time.Now().Add(srv.Timeout)
	for {
		b, _, err := srv.TryDial("/ws/B")
		if err == nil {
			b.ExpectMessage("B 进入了聊天室")
			b.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after A left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
