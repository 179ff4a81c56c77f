package wsprom_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wsroom/wsroom"
	wsprom "github.com/wsroom/wsroom/prometheus"
)

// Example wires a collector to a manager and serves /metrics.
func Example() {
	c := wsprom.NewCollector()
	m, err := wsroom.New(wsroom.WithObserver(c.Observer()))
	if err != nil {
		panic(err)
	}
	defer func() { _ = m.Shutdown(context.Background()) }()
	c.Watch(m)

	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "wsroom_connections") {
			fmt.Print(line)
		}
	}
	// Output:
	// wsroom_connections 0
	// wsroom_connections_accepted_total 0
	// wsroom_connections_refused_total{reason="auth"} 0
	// wsroom_connections_refused_total{reason="handshake"} 0
	// wsroom_connections_refused_total{reason="host"} 0
	// wsroom_connections_refused_total{reason="max_connections"} 0
	// wsroom_connections_refused_total{reason="origin"} 0
	// wsroom_connections_refused_total{reason="shutdown"} 0
}
