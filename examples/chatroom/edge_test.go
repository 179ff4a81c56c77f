package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
	"github.com/wsroom/wsroom/internal/rawws"
)

// TestChatInvalidUTF8ReachesNobody: one byte of invalid UTF-8 used to be
// relayed in "X says: …" to every page in the room, and a browser fails a
// connection that receives it. The sender is closed with 1007; the room
// gets nothing of it and stays connected.
func TestChatInvalidUTF8ReachesNobody(t *testing.T) {
	srv, m := startServer(t, nil)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A 进入了聊天室")
	rc, _, err := rawws.Dial(srv.Listener.Addr().String(), "/ws/X", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	demotest.Expect(t, a, "X 进入了聊天室")
	if err := rc.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpText, Payload: []byte("bad \xff")}); err != nil {
		t.Fatal(err)
	}
	frames, err := rc.ExpectEOF(demotest.Timeout)
	if err != nil || len(frames) < 2 {
		t.Fatalf("X got %v, %v; want its join line, then close 1007", frames, err)
	}
	if code, _, _ := rawws.ParseClose(frames[len(frames)-1].Payload); code != 1007 {
		t.Fatalf("X closed with %d, want 1007", code)
	}
	// The room sees X leave, and nothing X sent.
	demotest.Expect(t, a, "X 离开了聊天室")
	demotest.Send(t, a, "still here")
	demotest.Expect(t, a, "A 发送消息:still here", "服务端回复A:你发送的信息是:still here")
	if s := m.Stats(); s.ProtocolErrors != 1 {
		t.Errorf("ProtocolErrors = %d, want 1", s.ProtocolErrors)
	}
}

// TestChatRefusesBadIDsAndRoomsBeforeTheUpgrade: a client_id or room that
// is not up to 255 bytes of UTF-8 would end up in every join line; it is
// refused with HTTP 400 and nobody hears of it.
func TestChatRefusesBadIDsAndRoomsBeforeTheUpgrade(t *testing.T) {
	srv, _ := startServer(t, nil)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A 进入了聊天室")
	for _, path := range []string{
		"/ws/%FF",
		"/ws/" + strings.Repeat("x", 256),
		"/ws/B?room=%FF",
		"/ws/B?room=" + strings.Repeat("r", 256),
	} {
		_, resp, err := demotest.TryDial(demotest.WSURL(srv.URL, path), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%.40s: %v, %v; want HTTP 400", path, resp, err)
		}
	}
	b := join(t, srv, "/ws/B")
	demotest.Expect(t, a, "B 进入了聊天室") // the first line A gets after its own
	demotest.Expect(t, b, "B 进入了聊天室")
}

// TestChatRefusesAForeignHost: a page on a name an attacker points at this
// server (DNS rebinding) has an Origin that matches its Host, so only the
// Host check stops it, on every route.
func TestChatRefusesAForeignHost(t *testing.T) {
	srv, m := startServer(t, nil)
	addr := srv.Listener.Addr().String()
	_, resp, err := rawws.Dial(addr, "/ws/E", http.Header{"Host": {"evil.example:8080"}, "Origin": {"http://evil.example:8080"}})
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("WebSocket from a foreign host: %v, %v; want HTTP 403", resp, err)
	}
	for _, path := range []string{"/", "/members"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Host = "evil.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
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
	rc, _, err := rawws.Dial(srv2.Listener.Addr().String(), "/ws/F", http.Header{"Host": {"chat.example"}})
	if err != nil {
		t.Fatalf("Host named by -host: %v", err)
	}
	rc.Close()
}

// TestChatMaxConnections: past -max-conns, a handshake gets HTTP 503.
func TestChatMaxConnections(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.MaxConnections = 1
	srv, _ := startServer(t, &cfg)
	a := join(t, srv, "/ws/A")
	demotest.Expect(t, a, "A 进入了聊天室")
	_, resp, err := demotest.TryDial(demotest.WSURL(srv.URL, "/ws/B"), nil)
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second connection: %v, %v; want HTTP 503", resp, err)
	}
	demotest.Close(t, a)
	// Once A is gone, there is room again.
	deadline := time.Now().Add(demotest.Timeout)
	for {
		c, _, err := demotest.TryDial(demotest.WSURL(srv.URL, "/ws/B"), nil)
		if err == nil {
			_ = c.Close(websocket.StatusNormalClosure, "")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after A left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
