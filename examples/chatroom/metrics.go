package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/natsbroker"
	wsprom "github.com/wsroom/wsroom/prometheus"
	"github.com/wsroom/wsroom/redisbroker"
)

// metrics are the demo's Prometheus metrics (-metrics): the manager's,
// the Go runtime's and the process's. They are served on a listener of
// their own, not on the chat's, so that a public chat does not publish
// its numbers too.
type metrics struct {
	collector *wsprom.Collector
	registry  *prometheus.Registry
}

func newMetrics() *metrics {
	c := wsprom.NewCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &metrics{collector: c, registry: reg}
}

// option is the manager option that feeds the broker's publish histograms.
func (m *metrics) option() wsroom.Option {
	return wsroom.WithObserver(m.collector.Observer())
}

// watchBroker exports the broker's reconnections, for the brokers -broker
// opens.
func (m *metrics) watchBroker(b wsroom.Broker) {
	switch b := b.(type) {
	case *redisbroker.Broker:
		m.collector.WatchReconnects(func() uint64 { return b.Stats().Reconnects })
	case *natsbroker.Broker:
		m.collector.WatchReconnects(func() uint64 { return b.Stats().Reconnects })
	}
}

// handler answers GET /metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

// serve watches app's manager and serves /metrics on addr until app.Close
// runs. It returns the address listened on.
func (m *metrics) serve(addr string, app *demo.App, log *slog.Logger) (net.Addr, error) {
	m.collector.Watch(app.Manager)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	closeApp := app.Close
	app.Close = func() error {
		err := srv.Close()
		if closeApp != nil {
			err = errors.Join(closeApp(), err)
		}
		return err
	}
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr(), nil
}
