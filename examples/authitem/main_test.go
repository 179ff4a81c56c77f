package main

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
	"github.com/wsroom/wsroom/wsroomtest"
)

func startServer(t *testing.T) *wsroomtest.Server {
	t.Helper()
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return demotest.Serve(t, app)
}

// TestItemAuthMatrix replays BEHAVIOUR.md §2 case by case: HTTP 403
// before the upgrade without a credential (an empty one counts as
// absent); otherwise, for every message, the credential line (the cookie
// winning over the token), the q line when q is not empty, and the
// message line with the percent-decoded item ID.
func TestItemAuthMatrix(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name   string
		path   string
		cookie string   // Cookie header, if any
		lines  []string // replies to "M" before the message line; nil: refused with 403
		itemID string
	}{
		{name: "no credential", path: "/items/foo/ws"},
		{name: "empty token", path: "/items/foo/ws?token="},
		{name: "empty cookie", path: "/items/foo/ws", cookie: "session="},
		{name: "empty cookie and empty token", path: "/items/foo/ws?token=", cookie: "session="},
		{name: "token", path: "/items/foo/ws?token=abc", lines: []string{"cookie or token value is:abc"}, itemID: "foo"},
		{name: "cookie", path: "/items/foo/ws", cookie: "session=xyz", lines: []string{"cookie or token value is:xyz"}, itemID: "foo"},
		{name: "cookie wins over token", path: "/items/foo/ws?token=abc", cookie: "session=xyz", lines: []string{"cookie or token value is:xyz"}, itemID: "foo"},
		{name: "empty cookie falls back to token", path: "/items/foo/ws?token=abc", cookie: "session=", lines: []string{"cookie or token value is:abc"}, itemID: "foo"},
		{name: "q", path: "/items/foo/ws?token=abc&q=hello", lines: []string{"cookie or token value is:abc", "query param value is:hello"}, itemID: "foo"},
		{name: "empty q", path: "/items/foo/ws?token=abc&q=", lines: []string{"cookie or token value is:abc"}, itemID: "foo"},
		{name: "percent-encoded item ID", path: "/items/%E7%89%A9%E5%93%81%201/ws?token=abc", lines: []string{"cookie or token value is:abc"}, itemID: "物品 1"},
		{name: "encoded slash in item ID", path: "/items/a%2Fb/ws?token=abc", lines: []string{"cookie or token value is:abc"}, itemID: "a/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []wsroomtest.DialOption
			if tc.cookie != "" {
				opts = append(opts, wsroomtest.Header("Cookie", tc.cookie))
			}
			if tc.lines == nil {
				srv.ExpectHTTPStatus(tc.path, http.StatusForbidden, opts...)
				return
			}
			c := srv.Dial(tc.path, opts...)
			// The credential line is repeated for every message.
			for _, msg := range []string{"first message", "第二条", ""} {
				c.Send(msg)
				c.ExpectMessages(tc.lines...)
				c.ExpectMessage("Message text was: " + msg + ", for item ID: " + tc.itemID)
			}
			c.Close()
		})
	}
}

// TestItemTwoMebibytes: a 2 MiB message gets its two replies, the second
// 2,097,188 bytes long as in transcripts.json.
func TestItemTwoMebibytes(t *testing.T) {
	c := startServer(t).Dial("/items/foo/ws?token=abc")
	big := strings.Repeat("a", 2<<20)
	c.Send(big)
	c.ExpectMessage("cookie or token value is:abc")
	typ, got := c.Next()
	if typ != websocket.MessageText || len(got) != 2097188 || string(got) != "Message text was: "+big+", for item ID: foo" {
		t.Fatalf("got a %v message of %d bytes, want text of 2097188", typ, len(got))
	}
}

// TestItemBinaryClosesWith1003: the tutorial dropped the connection (1006)
// on a binary frame; the demo closes it with 1003.
func TestItemBinaryClosesWith1003(t *testing.T) {
	c := startServer(t).Dial("/items/foo/ws?token=abc")
	c.SendBinary([]byte{0, 1, 2})
	c.ExpectClose(websocket.StatusUnsupportedData)
}

// TestItemHTTP pins down the plain HTTP answers: an unknown path is a 404,
// not the tutorial's 403, so a client can tell it from an auth failure.
func TestItemHTTP(t *testing.T) {
	srv := startServer(t)
	for path, status := range map[string]int{
		"/":                       http.StatusOK,
		"/nope":                   http.StatusNotFound,
		"/items/foo":              http.StatusNotFound,
		"/items//ws?token=abc":    http.StatusNotFound,
		"/items/foo/ws":           http.StatusForbidden,
		"/items/foo/ws?token=abc": http.StatusUpgradeRequired,
	} {
		if resp, _ := srv.Get(path); resp.StatusCode != status {
			t.Errorf("GET %s: HTTP %d, want %d", path, resp.StatusCode, status)
		}
	}
}
