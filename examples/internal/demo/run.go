package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsroom/wsroom"
)

// App is what a demo serves.
type App struct {
	Handler http.Handler
	Manager *wsroom.ConnectionManager
	// Close, if set, runs after the manager has shut down: it releases
	// what the manager used, such as a broker connection.
	Close func() error
}

// Main runs a demo until SIGINT or SIGTERM and exits: 0 after a graceful
// shutdown, 1 if the demo could not start. newApp builds the demo once the
// flags are parsed.
func Main(cfg *Config, newApp func(log *slog.Logger) (*App, error)) {
	log := cfg.Logger(os.Stderr)
	if err := main(cfg, log, newApp); err != nil {
		log.Error(err.Error())
		os.Exit(1)
	}
}

func main(cfg *Config, log *slog.Logger, newApp func(*slog.Logger) (*App, error)) error {
	if _, err := cfg.Strings(); err != nil {
		return err
	}
	app, err := newApp(log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if app.Close != nil {
			_ = app.Close()
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("listening", "url", "http://"+ln.Addr().String()+"/")
	return Run(ctx, ln, app, cfg, log)
}

// Run serves app on ln until ctx ends, then shuts down gracefully within
// cfg.ShutdownTimeout: the listener closes, every WebSocket client gets
// 1001 (Going Away) after what was queued to it, and app.Close runs. Run
// returns nil after a shutdown, even one the deadline cut short (the
// remaining sockets are then closed without a handshake, and a warning is
// logged); it returns an error only if serving failed.
func Run(ctx context.Context, ln net.Listener, app *App, cfg *Config, log *slog.Logger) error {
	srv := &http.Server{
		Handler: app.Handler,
		// A request's line and headers may take 64 KiB (net/http's
		// default is 1 MiB, which a cookie or a path could fill for
		// every idle connection) and must arrive within 10 s; an idle
		// keep-alive connection is closed after cfg.IdleTimeout.
		MaxHeaderBytes:    64 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
		log.Info("shutting down")
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Both at once: the HTTP server stops accepting while the manager
	// sends every WebSocket client its 1001.
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(sctx) }()
	if err := app.Manager.Shutdown(sctx); err != nil {
		log.Warn("WebSocket shutdown cut short", "err", err)
	}
	if err := <-httpDone; err != nil {
		log.Warn("HTTP shutdown cut short", "err", err)
	}
	if app.Close != nil {
		if err := app.Close(); err != nil {
			log.Warn("close", "err", err)
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	log.Info("stopped")
	return nil
}
