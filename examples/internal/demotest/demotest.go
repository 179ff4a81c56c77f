// Package demotest holds what the demos' tests share beyond
// github.com/wsroom/wsroom/wsroomtest, which dials their clients and
// checks what they receive: serving a demo the way the demos shut down,
// and running the demos' own serving loop. Every wait is bounded, so a
// missing message fails the test instead of hanging it.
package demotest

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/wsroomtest"
)

// Timeout bounds every wait of these helpers, and the demos' shutdown in
// Serve and Run.
const Timeout = 20 * time.Second

// Serve serves app on a test server that the test's cleanup shuts down the
// way the demos do: the manager first (every client gets 1001), then the
// HTTP server. The shutdown must succeed.
func Serve(t *testing.T, app *demo.App) *wsroomtest.Server {
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
	// At, not Wrap, whose cleanup would close the server before the
	// shutdown above.
	return wsroomtest.At(t, srv.URL)
}

// Run serves app with the demos' own serving loop, demo.Run, configured by
// cfg (its ShutdownTimeout replaced by Timeout), on a fresh loopback port,
// and returns the server and a stop function. stop does what SIGINT does
// and returns a channel that gets Run's result once the shutdown is over;
// clients should read their close frames meanwhile, since the shutdown
// waits for their answers.
func Run(t *testing.T, app *demo.App, cfg demo.Config) (srv *wsroomtest.Server, stop func() <-chan error) {
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
	return wsroomtest.At(t, "http://"+ln.Addr().String()), func() <-chan error {
		cancel()
		return done
	}
}

// Abbrev shortens s for a failure message.
func Abbrev(s string) string {
	if len(s) <= 80 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:60]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
