// Package demotest holds the WebSocket client helpers the demos' tests
// share. Every wait is bounded, so a missing message fails the test
// instead of hanging it.
package demotest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/examples/internal/demo"
)

// Timeout bounds every wait of these helpers.
const Timeout = 20 * time.Second

// WSURL turns an httptest server URL and a path into a ws:// URL.
func WSURL(serverURL, path string) string {
	return "ws" + strings.TrimPrefix(serverURL, "http") + path
}

// Dial opens a WebSocket to url with the given request headers, failing
// the test if the handshake fails. The connection is closed when the test
// ends; its read limit is 64 MiB.
func Dial(t testing.TB, url string, header http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := TryDial(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// TryDial opens a WebSocket to url and returns the handshake's response,
// for tests of refused handshakes. A returned connection is the caller's
// to close.
func TryDial(url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	return c, resp, nil
}

// Send writes a text message.
func Send(t testing.TB, c *websocket.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("send %s: %v", Abbrev(text), err)
	}
}

// Read returns the next message, which must be text.
func Read(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("read a %v message, want text", typ)
	}
	return string(data)
}

// Expect reads len(want) messages and checks that they are want, in order.
func Expect(t testing.TB, c *websocket.Conn, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := Read(t, c); got != w {
			t.Fatalf("message %d: got %s, want %s", i+1, Abbrev(got), Abbrev(w))
		}
	}
}

// ExpectClose reads until the connection ends and checks its close code.
// Messages still arriving before the close are skipped.
func ExpectClose(t testing.TB, c *websocket.Conn, code websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			t.Fatalf("connection ended with %v (%v), want close %d", got, err, code)
		}
		return
	}
}

// Close closes c normally, ignoring a connection already gone.
func Close(t testing.TB, c *websocket.Conn) {
	t.Helper()
	err := c.Close(websocket.StatusNormalClosure, "")
	var ce websocket.CloseError
	if err != nil && !errors.As(err, &ce) && !strings.Contains(err.Error(), "closed") {
		t.Errorf("close: %v", err)
	}
}

// Abbrev shortens s for a failure message.
func Abbrev(s string) string {
	if len(s) <= 80 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:60]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// Serve serves app on a test server that the test's cleanup shuts down the
// way the demos do: the manager first (every client gets 1001), then the
// HTTP server. The shutdown must succeed.
func Serve(t *testing.T, app *demo.App) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := app.Manager.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return srv
}

// Run serves app with the demos' own serving loop, demo.Run, configured by
// cfg (its ShutdownTimeout replaced by Timeout), on a fresh loopback port,
// and returns its ws:// base URL and a stop function. stop does what
// SIGINT does and returns a channel that gets Run's result once the
// shutdown is over; clients should read their close frames meanwhile,
// since the shutdown waits for their answers.
func Run(t *testing.T, app *demo.App, cfg demo.Config) (base string, stop func() <-chan error) {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.ShutdownTimeout = Timeout
	go func() { done <- demo.Run(ctx, ln, app, &cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(cancel)
	return "ws://" + ln.Addr().String(), func() <-chan error {
		cancel()
		return done
	}
}

// ExpectStatuses GETs base+path for each path and checks the HTTP status.
func ExpectStatuses(t *testing.T, base string, want map[string]int) {
	t.Helper()
	for path, status := range want {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s: HTTP %d, want %d", path, resp.StatusCode, status)
		}
	}
}
