package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
	"github.com/wsroom/wsroom/wsroomtest"
)

func startServer(t *testing.T, lang string) *wsroomtest.Server {
	t.Helper()
	cfg := demo.DefaultConfig()
	cfg.Lang = lang
	return serve(t, &cfg)
}

func serve(t *testing.T, cfg *demo.Config) *wsroomtest.Server {
	t.Helper()
	app, err := newApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return demotest.Serve(t, app)
}

// TestEchoRepliesOncePerMessage pins down BEHAVIOUR.md §1: nothing on
// open, then exactly one reply per text message, in order, the empty
// message included.
func TestEchoRepliesOncePerMessage(t *testing.T) {
	for _, tc := range []struct {
		lang   string
		prefix string
	}{
		{"zh", "小菠萝收到的消息是: "},
		{"en", "Message received: "},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			c := startServer(t, tc.lang).Dial("/ws")
			sent := []string{"hello", "你好，小菠萝 🍍 ünïcødé", ""}
			for _, s := range sent {
				c.Send(s)
			}
			for _, s := range sent {
				c.ExpectMessage(tc.prefix + s)
			}
			// The next message after the last reply is the answer to a
			// new message: no reply was doubled.
			c.Send("last")
			c.ExpectMessage(tc.prefix + "last")
			if err := c.CloseWith(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// TestEchoTwoMebibytes: a 2 MiB message comes back whole (2,097,181 bytes
// with the prefix, as in transcripts.json).
func TestEchoTwoMebibytes(t *testing.T) {
	c := startServer(t, "zh").Dial("/ws")
	big := strings.Repeat("a", 2<<20)
	c.Send(big)
	typ, got := c.Next()
	if typ != websocket.MessageText || len(got) != 2097181 || string(got) != "小菠萝收到的消息是: "+big {
		t.Fatalf("got a %v message of %d bytes, want text of 2097181", typ, len(got))
	}
}

// TestEchoReadLimit: a message over -read-limit closes that connection
// with 1009, and the endpoint keeps serving others.
func TestEchoReadLimit(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.ReadLimit = 1024
	srv := serve(t, &cfg)
	c := srv.Dial("/ws")
	c.Send(strings.Repeat("a", 1024))
	c.ExpectMessage("小菠萝收到的消息是: " + strings.Repeat("a", 1024))
	c.Send(strings.Repeat("a", 1025))
	c.ExpectClose(websocket.StatusMessageTooBig)

	other := srv.Dial("/ws")
	other.Send("still here")
	other.ExpectMessage("小菠萝收到的消息是: still here")
}

// TestEchoBinaryClosesWith1003: the tutorial crashed on a binary frame
// (1006, no close frame); the demo closes with 1003 and goes on serving.
func TestEchoBinaryClosesWith1003(t *testing.T) {
	srv := startServer(t, "zh")
	c := srv.Dial("/ws")
	c.SendBinary([]byte("\x00\x01binary\xff"))
	c.ExpectClose(websocket.StatusUnsupportedData)

	other := srv.Dial("/ws")
	other.Send("hello")
	other.ExpectMessage("小菠萝收到的消息是: hello")
}

// TestEchoHTTP pins down the plain HTTP answers: the page at /, 404 for
// unknown paths (the tutorial answered 403), 426 for a GET on /ws that is
// not a handshake, 403 for a handshake from a foreign Origin, 404 for a
// handshake to an unknown path.
func TestEchoHTTP(t *testing.T) {
	srv := startServer(t, "zh")
	for _, tc := range []struct {
		name   string
		path   string
		status int
	}{
		{"unknown path", "/nope", http.StatusNotFound},
		{"unknown ws path", "/ws/extra", http.StatusNotFound},
		{"plain GET on /ws", "/ws", http.StatusUpgradeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, _ := srv.Get(tc.path); resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	t.Run("page", func(t *testing.T) {
		resp, body := srv.Get("/")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d, want 200", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		for _, id := range []string{`id="messageText"`, `id="messages"`, `id="status"`} {
			if !strings.Contains(body, id) {
				t.Errorf("page lacks %s", id)
			}
		}
	})
	t.Run("foreign origin", func(t *testing.T) {
		srv.ExpectHTTPStatus("/ws", http.StatusForbidden, wsroomtest.Origin("http://evil.example"))
	})
	t.Run("handshake to unknown path", func(t *testing.T) {
		srv.ExpectHTTPStatus("/nope", http.StatusNotFound)
	})
}

// TestEchoShutdownSends1001 runs the demo's serving loop and stops it as
// SIGINT would: the client gets 1001 and Run returns nil (exit status 0).
func TestEchoShutdownSends1001(t *testing.T) {
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, stop := demotest.Run(t, app, cfg)
	c := srv.Dial("/ws")
	c.Send("before")
	c.ExpectMessage("小菠萝收到的消息是: before")
	done := stop()
	c.ExpectClose(wsroom.StatusShutdown)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestEchoServerBounds runs the demo's own HTTP server: a request whose
// headers (a cookie, a path) pass 64 KiB is refused with 431 instead of
// being held, and an idle keep-alive connection is closed after
// -idle-timeout.
func TestEchoServerBounds(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := demotest.Run(t, app, cfg)
	addr := srv.Addr()

	for name, req := range map[string]string{
		"100 KiB cookie": "GET / HTTP/1.1\r\nHost: " + addr + "\r\nCookie: c=" + strings.Repeat("x", 100<<10) + "\r\n\r\n",
		"100 KiB path":   "GET /" + strings.Repeat("x", 100<<10) + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(demotest.Timeout))
		_, _ = io.WriteString(conn, req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: %v, %v; want HTTP 431", name, resp, err)
		}
		conn.Close()
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(demotest.Timeout))
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %v, %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: %v, want EOF", err)
	}
	if d := time.Since(start); d > cfg.IdleTimeout+2*time.Second {
		t.Fatalf("idle connection closed after %v, want about %v", d, cfg.IdleTimeout)
	}
}
