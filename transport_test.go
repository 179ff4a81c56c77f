package wsroom

import (
	"bufio"
	"context"
	"github.com/coder/websocket"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFrameSentWithHandshakeIsRead pins that bytes a client sends right
// behind its handshake, which net/http has already buffered when the
// connection is hijacked, reach the WebSocket reader.
func TestFrameSentWithHandshakeIsRead(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, nil)
		if err != nil {
			got <- "connect: " + err.Error()
			return
		}
		msg, err := c.Read(context.Background())
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- msg.Text()
		m.Disconnect(c, websocket.StatusNormalClosure, "")
	}))
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	}()

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The handshake and a masked text frame "hi" in a single write.
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	req := "GET / HTTP/1.1\r\nHost: " + conn.RemoteAddr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	select {
	case s := <-got:
		if s != "hi" {
			t.Fatalf("server read %q, want %q", s, "hi")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server read nothing")
	}
}
