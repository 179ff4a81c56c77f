package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/wsroomtest"
)

// chatWithMetrics serves the demo as -metrics does, lets ann join, speak
// and leave, and returns the scrape of its metrics listener, parsed with
// the Prometheus text parser, with the chat server.
func chatWithMetrics(t *testing.T) (map[string]*dto.MetricFamily, *wsroomtest.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	cfg := demo.DefaultConfig()
	met := newMetrics()
	app, err := newApp(&cfg, log, met.option())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := met.serve("127.0.0.1:0", app, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := wsroomtest.NewServer(t, app.Handler)
	t.Cleanup(func() {
		if err := app.Manager.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := app.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})

	ann := srv.Dial("/ws/ann")
	ann.ExpectMessage("ann 进入了聊天室")
	ann.Send("hi")
	ann.ExpectMessages("ann 发送消息:hi", "服务端回复ann:你发送的信息是:hi")
	ann.Close()
	deadline := time.Now().Add(wsroomtest.DefaultTimeout)
	for app.Manager.Stats().Closes[1000] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("ann's close was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}

	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families, srv
}

// TestMetricsServesTheChatsCounters pins -metrics: its own listener
// answers /metrics in the text format with the chat manager's counters
// (and the Go runtime's), and the chat's listener does not.
func TestMetricsServesTheChatsCounters(t *testing.T) {
	wsroomtest.VerifyNoLeaks(t)
	families, srv := chatWithMetrics(t)
	for name, want := range map[string]float64{
		"wsroom_connections":                0,
		"wsroom_connections_accepted_total": 1,
		"wsroom_messages_received_total":    1,
		// ann's join line, her line and the reply.
		"wsroom_messages_queued_total": 3,
		"wsroom_messages_sent_total":   3,
	} {
		mf := families[name]
		if mf == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		m := mf.GetMetric()[0]
		if got := m.GetGauge().GetValue() + m.GetCounter().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	closes := families["wsroom_closes_total"]
	if closes == nil || len(closes.GetMetric()) != 1 || closes.GetMetric()[0].GetLabel()[0].GetValue() != "1000" ||
		closes.GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Errorf("wsroom_closes_total: %v, want one close with 1000", closes)
	}
	if families["go_goroutines"] == nil {
		t.Error("go_goroutines: missing")
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the chat's listener answers /metrics with HTTP %d, want 404", resp.StatusCode)
	}
}

// promqlWords are the PromQL functions, aggregations and keywords the
// dashboard may use; every other name in its queries must be a metric.
var promqlWords = []string{
	"sum", "max", "min", "avg", "count", "rate", "irate", "increase",
	"histogram_quantile", "by", "without", "and", "or", "unless", "bool", "offset",
}

var (
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers      = regexp.MustCompile(`\{[^}]*\}`)
	ranges        = regexp.MustCompile(`\[[^\]]*\]`)
	grouping      = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// queryNames returns the names a PromQL query refers to: metrics,
// functions and keywords, without labels, strings, ranges and numbers.
func queryNames(expr string) []string {
	for _, re := range []*regexp.Regexp{stringLiteral, matchers, ranges, grouping} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, loc := range identifier.FindAllStringIndex(expr, -1) {
		if loc[0] > 0 && strings.ContainsAny(expr[loc[0]-1:loc[0]], "0123456789.") {
			continue // the exponent or unit of a number: 1e3, 5m
		}
		names = append(names, expr[loc[0]:loc[1]])
	}
	return names
}

// exprs returns every "expr" of a Grafana dashboard, wherever it is.
func exprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for key, child := range v {
			if s, ok := child.(string); ok && key == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, exprs(child)...)
		}
	case []any:
		for _, child := range v {
			out = append(out, exprs(child)...)
		}
	}
	return out
}

// TestGrafanaDashboardRefersOnlyToExportedMetrics pins
// grafana-dashboard.json: it is JSON, and every name its queries use is a
// metric /metrics serves (a histogram's _bucket, _sum and _count
// included) or a PromQL word.
func TestGrafanaDashboardRefersOnlyToExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard any
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	families, _ := chatWithMetrics(t)
	known := map[string]bool{}
	for name, mf := range families {
		known[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				known[name+suffix] = true
			}
		}
	}
	queries := exprs(dashboard)
	if len(queries) == 0 {
		t.Fatal("grafana-dashboard.json has no queries")
	}
	for _, q := range queries {
		metrics := 0
		for _, name := range queryNames(q) {
			switch {
			case known[name]:
				metrics++
			case !slices.Contains(promqlWords, name):
				t.Errorf("query %q: %q is no metric /metrics serves", q, name)
			}
		}
		if metrics == 0 {
			t.Errorf("query %q uses no metric", q)
		}
	}
}

// TestQueryNames pins the dashboard test's tokenizer, so that it cannot
// pass by finding no names at all.
func TestQueryNames(t *testing.T) {
	got := queryNames(`histogram_quantile(0.99, sum by (le) (rate(wsroom_x_bucket{code="1000",le!~"a b"}[$__rate_interval]))) / 1e3 + wsroom_y offset 5m`)
	want := []string{"histogram_quantile", "sum", "rate", "wsroom_x_bucket", "wsroom_y", "offset"}
	if !slices.Equal(got, want) {
		t.Errorf("queryNames = %q, want %q", got, want)
	}
}
