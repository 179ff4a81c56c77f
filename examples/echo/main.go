// Command echo is the tutorial's first demo on wsroom: every text message
// sent to /ws comes back once, prefixed with "小菠萝收到的消息是: ".
//
//	go run ./examples/echo [-addr 127.0.0.1:8080] [-lang en]
//
// Then open http://127.0.0.1:8080/. See README.md for every flag.
package main

import (
	_ "embed"
	"flag"
	"log/slog"
	"net/http"

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

// newApp builds the demo: the page at / and the echo endpoint at /ws.
// Tests pass extra manager options after cfg's.
func newApp(cfg *demo.Config, log *slog.Logger, opts ...wsroom.Option) (*demo.App, error) {
	text, err := cfg.Strings()
	if err != nil {
		return nil, err
	}
	m, err := wsroom.New(append(cfg.Options(log), opts...)...)
	if err != nil {
		return nil, err
	}
	echo := wsroom.Hooks{
		OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
			if demo.TextOnly(m, c, msg) {
				demo.Send(m, log, c, text.Echo(msg.Text()))
			}
		},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", demo.Page(page))
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		// Start answers a refused request itself (403, 426, 503...).
		if _, err := m.Start(w, r, nil, echo); err != nil {
			log.Debug("not upgraded", "path", r.URL.Path, "err", err)
		}
	})
	return &demo.App{Handler: demo.HostCheck(cfg.AllowedHosts(), mux), Manager: m}, nil
}
