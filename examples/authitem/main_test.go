package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
)

func startServer(t *testing.T) *httptest.Server {
	t.Helper()
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := demotest.Serve(t, app)
	return srv
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
			header := http.Header{}
			if tc.cookie != "" {
				header.Set("Cookie", tc.cookie)
			}
			c, resp, err := demotest.TryDial(demotest.WSURL(srv.URL, tc.path), header)
			if tc.lines == nil {
				if err == nil {
					_ = c.CloseNow()
					t.Fatal("upgraded, want HTTP 403")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("dial: %v, want HTTP 403", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.CloseNow()
			// The credential line is repeated for every message.
			for _, msg := range []string{"first message", "第二条", ""} {
				demotest.Send(t, c, msg)
				demotest.Expect(t, c, tc.lines...)
				demotest.Expect(t, c, "Message text was: "+msg+", for item ID: "+tc.itemID)
			}
			demotest.Close(t, c)
		})
	}
}

// TestItemTwoMebibytes: a 2 MiB message gets its two replies, the second
// 2,097,188 bytes long as in transcripts.json.
func TestItemTwoMebibytes(t *testing.T) {
	srv := startServer(t)
	c := demotest.Dial(t, demotest.WSURL(srv.URL, "/items/foo/ws?token=abc"), nil)
	big := strings.Repeat("a", 2<<20)
	demotest.Send(t, c, big)
	demotest.Expect(t, c, "cookie or token value is:abc")
	if got := demotest.Read(t, c); len(got) != 2097188 || got != "Message text was: "+big+", for item ID: foo" {
		t.Fatalf("got %d bytes, want 2097188", len(got))
	}
}

// TestItemBinaryClosesWith1003: the tutorial dropped the connection (1006)
// on a binary frame; the demo closes it with 1003.
func TestItemBinaryClosesWith1003(t *testing.T) {
	srv := startServer(t)
	c := demotest.Dial(t, demotest.WSURL(srv.URL, "/items/foo/ws?token=abc"), nil)
	if err := c.Write(context.Background(), websocket.MessageBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	demotest.ExpectClose(t, c, websocket.StatusUnsupportedData)
}

// TestItemHTTP pins down the plain HTTP answers: an unknown path is a 404,
// not the tutorial's 403, so a client can tell it from an auth failure.
func TestItemHTTP(t *testing.T) {
	srv := startServer(t)
	demotest.ExpectStatuses(t, srv.URL, map[string]int{
		"/":                       http.StatusOK,
		"/nope":                   http.StatusNotFound,
		"/items/foo":              http.StatusNotFound,
		"/items//ws?token=abc":    http.StatusNotFound,
		"/items/foo/ws":           http.StatusForbidden,
		"/items/foo/ws?token=abc": http.StatusUpgradeRequired,
	})
}
