package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
)

func startServer(t *testing.T, lang string) (*httptest.Server, *demo.App) {
	t.Helper()
	cfg := demo.DefaultConfig()
	cfg.Lang = lang
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := demotest.Serve(t, app)
	return srv, app
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
			srv, _ := startServer(t, tc.lang)
			c := demotest.Dial(t, demotest.WSURL(srv.URL, "/ws"), nil)
			sent := []string{"hello", "你好，小菠萝 🍍 ünïcødé", ""}
			for _, s := range sent {
				demotest.Send(t, c, s)
			}
			for _, s := range sent {
				demotest.Expect(t, c, tc.prefix+s)
			}
			// The next message after the last reply is the answer to a
			// new message: no reply was doubled.
			demotest.Send(t, c, "last")
			demotest.Expect(t, c, tc.prefix+"last")
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// TestEchoTwoMebibytes: a 2 MiB message comes back whole (2,097,181 bytes
// with the prefix, as in transcripts.json).
func TestEchoTwoMebibytes(t *testing.T) {
	srv, _ := startServer(t, "zh")
	c := demotest.Dial(t, demotest.WSURL(srv.URL, "/ws"), nil)
	big := strings.Repeat("a", 2<<20)
	demotest.Send(t, c, big)
	got := demotest.Read(t, c)
	if len(got) != 2097181 || got != "小菠萝收到的消息是: "+big {
		t.Fatalf("got %d bytes, want 2097181", len(got))
	}
}

// TestEchoReadLimit: a message over -read-limit closes that connection
// with 1009, and the endpoint keeps serving others.
func TestEchoReadLimit(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.ReadLimit = 1024
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	defer srv.Close()
	c := demotest.Dial(t, demotest.WSURL(srv.URL, "/ws"), nil)
	demotest.Send(t, c, strings.Repeat("a", 1024))
	demotest.Expect(t, c, "小菠萝收到的消息是: "+strings.Repeat("a", 1024))
	demotest.Send(t, c, strings.Repeat("a", 1025))
	demotest.ExpectClose(t, c, websocket.StatusMessageTooBig)

	other := demotest.Dial(t, demotest.WSURL(srv.URL, "/ws"), nil)
	demotest.Send(t, other, "still here")
	demotest.Expect(t, other, "小菠萝收到的消息是: still here")
}

// TestEchoBinaryClosesWith1003: the tutorial crashed on a binary frame
// (1006, no close frame); the demo closes with 1003 and goes on serving.
func TestEchoBinaryClosesWith1003(t *testing.T) {
	srv, _ := startServer(t, "zh")
	c := demotest.Dial(t, demotest.WSURL(srv.URL, "/ws"), nil)
	if err := c.Write(context.Background(), websocket.MessageBinary, []byte("\x00\x01binary\xff")); err != nil {
		t.Fatal(err)
	}
	demotest.ExpectClose(t, c, websocket.StatusUnsupportedData)

	other := demotest.Dial(t, demotest.WSURL(srv.URL, "/ws"), nil)
	demotest.Send(t, other, "hello")
	demotest.Expect(t, other, "小菠萝收到的消息是: hello")
}

// TestEchoHTTP pins down the plain HTTP answers: the page at /, 404 for
// unknown paths (the tutorial answered 403), 426 for a GET on /ws that is
// not a handshake, 403 for a foreign Origin.
func TestEchoHTTP(t *testing.T) {
	srv, _ := startServer(t, "zh")
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"page", "/", nil, http.StatusOK},
		{"unknown path", "/nope", nil, http.StatusNotFound},
		{"unknown ws path", "/ws/extra", nil, http.StatusNotFound},
		{"plain GET on /ws", "/ws", nil, http.StatusUpgradeRequired},
		{"foreign origin", "/ws", handshake("http://evil.example"), http.StatusForbidden},
		{"handshake to unknown path", "/nope", handshake(""), http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.path == "/" {
				if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				for _, id := range []string{`id="messageText"`, `id="messages"`, `id="status"`} {
					if !strings.Contains(string(body), id) {
						t.Errorf("page lacks %s", id)
					}
				}
			}
		})
	}
}

// handshake returns the headers of a WebSocket handshake, with an Origin
// when origin is not empty.
func handshake(origin string) http.Header {
	h := http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return h
}

// TestEchoShutdownSends1001 runs the demo's serving loop and stops it as
// SIGINT would: the client gets 1001 and Run returns nil (exit status 0).
func TestEchoShutdownSends1001(t *testing.T) {
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base, stop := demotest.Run(t, app, cfg)
	c := demotest.Dial(t, base+"/ws", nil)
	demotest.Send(t, c, "before")
	demotest.Expect(t, c, "小菠萝收到的消息是: before")
	done := stop()
	demotest.ExpectClose(t, c, wsroom.StatusShutdown)
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
	base, _ := demotest.Run(t, app, cfg)
	addr := strings.TrimPrefix(base, "ws://")

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
