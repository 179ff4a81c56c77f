package wsprom_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/wsroom/wsroom"
	wsprom "github.com/wsroom/wsroom/prometheus"
	"github.com/wsroom/wsroom/wsroomtest"
)

// everyFamily gathers every metric family the collector exports, from a
// manager that has seen a connection closed, so that wsroom_closes_total
// has a series too.
func everyFamily(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	c := wsprom.NewCollector()
	m, err := wsroom.New(wsroom.WithObserver(c.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	c.Watch(m)
	c.WatchReconnects(func() uint64 { return 2 })
	srv := wsroomtest.NewServer(t, chatHandler(m))
	srv.Dial("/ws?room=chat").Close()
	eventually(t, "the close to be counted", func() bool { return m.Stats().Closes[1000] == 1 })

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// boundedLabels are the only labels a metric may have, each with a
// small, fixed set of values.
var boundedLabels = []string{"reason", "outcome", "kind", "code"}

// TestMetricsFollowPrometheusConventions pins the naming rules: promlint
// finds nothing (HELP on every metric, _total on counters, base units),
// every name starts with wsroom_, every HELP is a sentence, and no label
// can grow with the traffic.
func TestMetricsFollowPrometheusConventions(t *testing.T) {
	families := everyFamily(t)
	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, mf := range families {
		name := mf.GetName()
		if !strings.HasPrefix(name, "wsroom_") {
			t.Errorf("%s: want the prefix wsroom_", name)
		}
		if help := mf.GetHelp(); help == "" || !strings.HasSuffix(help, ".") {
			t.Errorf("%s: HELP %q, want a sentence", name, help)
		}
		if mf.GetType() == dto.MetricType_COUNTER != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: a %v; only counters, and all of them, end in _total", name, mf.GetType())
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if !slices.Contains(boundedLabels, l.GetName()) {
					t.Errorf("%s: label %q, want only %v", name, l.GetName(), boundedLabels)
				}
			}
		}
	}
}

// TestREADMEListsEveryMetric pins README.md's table to the code: every
// metric exported is listed with its type, and nothing else is.
func TestREADMEListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(wsroom_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\|")
	listed := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		listed[m[1]] = m[2]
	}
	for _, mf := range everyFamily(t) {
		typ := strings.ToLower(mf.GetType().String())
		switch got, ok := listed[mf.GetName()]; {
		case !ok:
			t.Errorf("README.md does not list %s", mf.GetName())
		case got != typ:
			t.Errorf("README.md lists %s as a %s, want %s", mf.GetName(), got, typ)
		}
		delete(listed, mf.GetName())
	}
	for name := range listed {
		t.Errorf("README.md lists %s, which the collector does not export", name)
	}
}
