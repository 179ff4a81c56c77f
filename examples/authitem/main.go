// Command authitem is the tutorial's authenticated-item demo on wsroom:
// /items/{item_id}/ws accepts a client that brings a session cookie or a
// token query parameter, and answers each message with the credential,
// the optional q parameter and the message with the item ID.
//
//	go run ./examples/authitem [-addr 127.0.0.1:8080]
//
// Then open http://127.0.0.1:8080/. See README.md for every flag.
package main

import (
	"context"
	_ "embed"
	"flag"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
)

//go:embed index.html
var page []byte

func main() {
	cfg := demo.DefaultConfig()
	cfg.Register(flag.CommandLine)
	flag.Parse()
	demo.Main(&cfg, func(log *slog.Logger) (*demo.App, error) { return newApp(&cfg, log) })
}

// verify accepts any non-empty credential, as the tutorial's dependency
// does, and makes it the connection's subject. A real server checks it
// here, against a session store or a token's signature.
func verify(_ context.Context, credential string) (wsroom.Identity, error) {
	return wsroom.Identity{Subject: credential}, nil
}

// newApp builds the demo: the page at / and the item endpoint. Tests pass
// extra manager options after cfg's.
func newApp(cfg *demo.Config, log *slog.Logger, opts ...wsroom.Option) (*demo.App, error) {
	text, err := cfg.Strings()
	if err != nil {
		return nil, err
	}
	opts = append(cfg.Options(log), append(opts,
		// The cookie "session" wins over the query parameter "token"; an
		// empty value counts as absent. A request with neither, or with
		// a credential that is not UTF-8, gets HTTP 403 before the
		// upgrade, as the tutorial's app answered.
		wsroom.WithAuthenticator(wsroom.CookieOrToken("session", "token", verify)),
	)...)
	m, err := wsroom.New(opts...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", demo.Page(page))
	mux.HandleFunc("GET /items/{item_id}/ws", func(w http.ResponseWriter, r *http.Request) {
		itemID := r.PathValue("item_id") // percent-decoded
		q := r.URL.Query().Get("q")
		// Both are echoed in text messages, which must be UTF-8: refuse
		// anything else before the upgrade.
		if !utf8.ValidString(itemID) || !utf8.ValidString(q) {
			http.Error(w, "item_id and q must be UTF-8", http.StatusBadRequest)
			return
		}
		h := wsroom.Hooks{
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				if !demo.TextOnly(m, c, msg) {
					return
				}
				// Three messages for every message, as in the tutorial.
				demo.Send(m, log, c, text.ItemCredential(c.Identity().Subject))
				if q != "" {
					demo.Send(m, log, c, text.ItemQuery(q))
				}
				demo.Send(m, log, c, text.ItemMessage(msg.Text(), itemID))
			},
		}
		// Start answers a refused request itself (403, 426, 503...).
		if _, err := m.Start(w, r, nil, h); err != nil {
			log.Debug("not upgraded", "path", r.URL.Path, "err", err)
		}
	})
	return &demo.App{Handler: demo.HostCheck(cfg.AllowedHosts(), mux), Manager: m}, nil
}
