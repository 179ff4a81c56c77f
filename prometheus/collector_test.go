package wsprom_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/wsroom/wsroom"
	wsprom "github.com/wsroom/wsroom/prometheus"
	"github.com/wsroom/wsroom/wsroomtest"
)

// chatHandler joins each client to the room its ?room= names and
// broadcasts what it sends to that room, the sender included. Clients
// need ?token=good.
func chatHandler(m *wsroom.ConnectionManager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		room := r.URL.Query().Get("room")
		_, _ = m.Start(w, r, &wsroom.ConnectOptions{ID: r.URL.Query().Get("id")}, wsroom.Hooks{
			OnOpen: func(c *wsroom.Conn) {
				if err := m.Join(context.Background(), c, room); err != nil {
					_ = m.Disconnect(c, wsroom.StatusCode(1011), "join failed")
				}
			},
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				_ = m.Broadcast(context.Background(), room, msg)
			},
		})
	})
}

func tokenAuth(r *http.Request) (wsroom.Identity, error) {
	if r.URL.Query().Get("token") != "good" {
		return wsroom.Identity{}, wsroom.ErrUnauthorized
	}
	return wsroom.Identity{Subject: "user"}, nil
}

// eventually waits until cond holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wsroomtest.DefaultTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting, after %v, for %s", wsroomtest.DefaultTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestScrapeCountsScriptedScenario runs connects, refusals of every
// reason, broadcasts, a broadcast from another node, closes with codes, a
// slow consumer evicted and a shutdown against a real manager, then
// scrapes /metrics, parses it with the Prometheus text parser and checks
// every series. Each value the scenario decides is checked exactly; the
// one it cannot, how much of a 16 MiB message the kernel took from the
// evicted consumer's writer, is checked to be what Stats says, within
// bounds.
func TestScrapeCountsScriptedScenario(t *testing.T) {
	broker := wsroom.NewMemoryBroker()
	collector := wsprom.NewCollector()
	m, err := wsroom.New(
		wsroom.WithObserver(collector.Observer()),
		wsroom.WithBroker(broker), wsroom.WithNodeID("a"),
		wsroom.WithAuthenticator(wsroom.AuthFunc(tokenAuth)),
		wsroom.WithAllowedHosts("127.0.0.1"),
		wsroom.WithMaxConnections(3),
		// One message: a client is evicted as soon as a second waits.
		// The test waits for every message before sending the next.
		wsroom.WithQueueLimit(1, wsroom.DefaultQueueBytes),
		wsroom.WithPing(0, 0),
		wsroom.WithCloseTimeout(time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	collector.Watch(m)
	other, err := wsroom.New(wsroom.WithBroker(broker), wsroom.WithNodeID("b"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t.Cleanup(func() {
		for _, mgr := range []*wsroom.ConnectionManager{other, m} {
			if err := mgr.Shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	})

	mux := http.NewServeMux()
	mux.Handle("GET /ws", chatHandler(m))
	mux.Handle("GET /metrics", metricsHandler(t, collector))
	srv := wsroomtest.NewServer(t, mux)
	const chat = "/ws?room=chat&token=good"
	stats := m.Stats
	// broadcast sends from the server and waits until the broker took it,
	// so that every broadcast is a batch of its own.
	broadcast := func(room, text string) {
		t.Helper()
		published := stats().BrokerPublished
		if err := m.Broadcast(ctx, room, wsroom.Text(text)); err != nil {
			t.Fatalf("broadcast to %s: %v", room, err)
		}
		eventually(t, "the broker to take the broadcast", func() bool { return stats().BrokerPublished == published+1 })
	}
	// said waits until the broker took what a client said.
	said := func(published uint64) {
		t.Helper()
		eventually(t, "the broker to take the broadcast", func() bool { return stats().BrokerPublished == published })
	}

	// Refused before any connection is open, so that none is refused for
	// the cap instead.
	srv.ExpectHTTPStatus("/ws?room=chat&token=bad", http.StatusForbidden)
	srv.ExpectHTTPStatus(chat+"&id="+strings.Repeat("x", 256), http.StatusBadRequest)
	srv.ExpectHTTPStatus(chat, http.StatusForbidden, wsroomtest.Origin("https://evil.example"))
	srv.ExpectHTTPStatus(chat, http.StatusForbidden, wsroomtest.Host("evil.example"))

	ann := srv.Dial(chat + "&id=ann")
	bob := srv.Dial(chat + "&id=bob")
	// slow never reads; its small receive buffer fills at once.
	slow := srv.Dial("/ws?room=slow&token=good&id=slow", wsroomtest.Paused(), wsroomtest.ReceiveBuffer(64<<10))
	eventually(t, "three members", func() bool { return len(m.Members("chat")) == 2 && len(m.Members("slow")) == 1 })
	srv.ExpectHTTPStatus(chat, http.StatusServiceUnavailable)

	ann.Send("hi")
	ann.ExpectMessage("hi")
	bob.ExpectMessage("hi")
	said(1)
	bob.Send("yo")
	ann.ExpectMessage("yo")
	bob.ExpectMessage("yo")
	said(2)
	if err := other.Broadcast(ctx, "chat", wsroom.Text("far")); err != nil {
		t.Fatal(err)
	}
	ann.ExpectMessage("far")
	bob.ExpectMessage("far")

	if err := ann.CloseWith(4000, "bye"); err != nil {
		t.Fatalf("ann's close: %v", err)
	}
	bob.Close()
	eventually(t, "ann and bob to be closed", func() bool { s := stats(); return s.Closes[4000]+s.Closes[1000] == 2 })
	beforeSlow := stats()

	// The writer takes the big message and blocks writing it, the next
	// waits in the queue, and the one after finds the queue full.
	big := strings.Repeat("x", 16<<20)
	broadcast("slow", big)
	eventually(t, "the writer to take the big message", func() bool {
		s := stats()
		return s.MaxQueueLength == 0 && s.BytesOut > beforeSlow.BytesOut
	})
	broadcast("slow", "a")
	broadcast("slow", "b")
	slow.StopReading()
	// Its writer is stuck in the big message: the close frame never goes
	// out, and the close timeout ends the connection without a handshake.
	eventually(t, "the slow consumer to be closed", func() bool { return stats().Closes[1006] == 1 })
	afterSlow := stats()
	slowBytes := afterSlow.BytesOut - beforeSlow.BytesOut
	if slowBytes == 0 || slowBytes >= uint64(len(big)) {
		t.Errorf("%d bytes written to the slow consumer, want some of the %d of the big message, not all", slowBytes, len(big))
	}

	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv.ExpectHTTPStatus(chat, http.StatusServiceUnavailable)

	families := scrape(t, srv.URL+"/metrics")

	// Frames from clients are masked: 2 bytes of header and 4 of mask,
	// then the payload; a close frame's payload is its code, 2 bytes,
	// and its reason.
	const bytesIn = (6 + len("hi")) + (6 + 2 + len("bye")) + (6 + len("yo")) + (6 + 2)
	// From the server: 2 bytes of header and the payload, and the close
	// frame that answers each client's, echoing its code and reason.
	const bytesOut = 2*(2+len("hi")) + 2*(2+len("yo")) + 2*(2+len("far")) + (2 + 2 + len("bye")) + (2 + 2)
	want := map[string]float64{
		"wsroom_connections":        0,
		"wsroom_rooms":              0,
		"wsroom_queued_bytes":       0,
		"wsroom_queue_max_messages": 0,
		"wsroom_queue_max_bytes":    0,

		"wsroom_connections_accepted_total":                          3,
		`wsroom_connections_refused_total{reason="auth"}`:            1,
		`wsroom_connections_refused_total{reason="handshake"}`:       1,
		`wsroom_connections_refused_total{reason="origin"}`:          1,
		`wsroom_connections_refused_total{reason="host"}`:            1,
		`wsroom_connections_refused_total{reason="max_connections"}`: 1,
		`wsroom_connections_refused_total{reason="shutdown"}`:        1,

		"wsroom_messages_received_total": 2,
		// hi, yo and far to ann and bob; the big message and "a" to slow.
		"wsroom_messages_queued_total": 8,
		// hi, yo and far to ann and bob; slow's writer never finished one.
		"wsroom_messages_sent_total":  6,
		"wsroom_received_bytes_total": float64(bytesIn),
		"wsroom_sent_bytes_total":     float64(bytesOut + int(slowBytes)),

		`wsroom_slow_consumer_total{outcome="dropped_newest"}`: 0,
		`wsroom_slow_consumer_total{outcome="dropped_oldest"}`: 0,
		`wsroom_slow_consumer_total{outcome="evicted"}`:        1,
		"wsroom_queue_over_budget_total":                       0,
		"wsroom_invalid_utf8_sends_total":                      0,
		"wsroom_protocol_errors_total":                         0,
		`wsroom_timeouts_total{kind="ping"}`:                   0,
		`wsroom_timeouts_total{kind="write"}`:                  0,
		`wsroom_timeouts_total{kind="close"}`:                  1,

		`wsroom_closes_total{code="1000"}`: 1,
		`wsroom_closes_total{code="4xxx"}`: 1,
		`wsroom_closes_total{code="1006"}`: 1,

		// hi, yo and the three to slow, one batch each.
		"wsroom_broker_published_total":       5,
		"wsroom_broker_publish_batches_total": 5,
		"wsroom_broker_publish_errors_total":  0,
		"wsroom_broker_queue_full_total":      0,
		"wsroom_broker_received_total":        1,
		"wsroom_broker_malformed_total":       0,

		"wsroom_broker_publish_duration_seconds_count": 5,
		"wsroom_broker_publish_batch_broadcasts_count": 5,
		"wsroom_broker_publish_batch_broadcasts_sum":   5,
		// Every batch held one broadcast.
		`wsroom_broker_publish_batch_broadcasts_bucket{le="1"}`: 5,
		`wsroom_broker_publish_batch_broadcasts_bucket{le="2"}`: 5,
	}
	got := flatten(families)
	for _, key := range sortedKeys(want) {
		v, ok := got[key]
		switch {
		case !ok:
			t.Errorf("%s: missing from the scrape", key)
		case v != want[key]:
			t.Errorf("%s = %v, want %v", key, v, want[key])
		}
	}
	// Every series of the scrape is checked above, but the buckets of the
	// histograms and the sum of their durations.
	for _, key := range sortedKeys(got) {
		if _, ok := want[key]; !ok && !strings.Contains(key, "_bucket{") && key != "wsroom_broker_publish_duration_seconds_sum" {
			t.Errorf("%s = %v: a series the test does not expect", key, got[key])
		}
	}
	if s := got["wsroom_broker_publish_duration_seconds_sum"]; s <= 0 {
		t.Errorf("wsroom_broker_publish_duration_seconds_sum = %v, want the time of 5 publishes", s)
	}
}

// TestCollectBeforeWatchExportsHistogramsOnly pins that a Collector not yet
// watching a manager scrapes without error, with its histograms empty.
func TestCollectBeforeWatchExportsHistogramsOnly(t *testing.T) {
	srv := wsroomtest.NewServer(t, metricsHandler(t, wsprom.NewCollector()))
	got := flatten(scrape(t, srv.URL))
	want := []string{
		"wsroom_broker_publish_batch_broadcasts_count", "wsroom_broker_publish_batch_broadcasts_sum",
		"wsroom_broker_publish_duration_seconds_count", "wsroom_broker_publish_duration_seconds_sum",
	}
	var names []string
	for key, v := range got {
		if !strings.Contains(key, "_bucket{") {
			names = append(names, key)
		}
		if v != 0 {
			t.Errorf("%s = %v, want 0", key, v)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("series %v, want %v and buckets", names, want)
	}
}

// TestObserverRecordsFailedPublishes pins that a failed Publish is
// observed like one that succeeded, with its batch size.
func TestObserverRecordsFailedPublishes(t *testing.T) {
	c := wsprom.NewCollector()
	published := c.Observer().Published
	published(3, 2*time.Millisecond, nil)
	published(7, 3*time.Second, fmt.Errorf("broker down"))
	srv := wsroomtest.NewServer(t, metricsHandler(t, c))
	got := flatten(scrape(t, srv.URL))
	for key, want := range map[string]float64{
		"wsroom_broker_publish_duration_seconds_count":               2,
		"wsroom_broker_publish_duration_seconds_sum":                 3.002,
		`wsroom_broker_publish_duration_seconds_bucket{le="0.0025"}`: 1,
		`wsroom_broker_publish_duration_seconds_bucket{le="2.5"}`:    1,
		`wsroom_broker_publish_duration_seconds_bucket{le="5"}`:      2,
		"wsroom_broker_publish_batch_broadcasts_count":               2,
		"wsroom_broker_publish_batch_broadcasts_sum":                 10,
		`wsroom_broker_publish_batch_broadcasts_bucket{le="4"}`:      1,
		`wsroom_broker_publish_batch_broadcasts_bucket{le="8"}`:      2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}

// flatten maps each series of a scrape, written as in the text format
// (name{label="value"}, labels sorted), to its value. A histogram gives
// its _bucket, _sum and _count series.
func flatten(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range families {
		for _, metric := range mf.GetMetric() {
			labels := labelString(metric.GetLabel())
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name+labels] = metric.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+labels] = metric.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := metric.GetHistogram()
				out[name+"_count"+labels] = float64(h.GetSampleCount())
				out[name+"_sum"+labels] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[fmt.Sprintf(`%s_bucket{le="%g"}`, name, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			default:
				out[name+labels] = -1 // no type the collector exports: fails every check
			}
		}
	}
	return out
}

func labelString(labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestReconnectsAreReadAtEveryScrape pins WatchReconnects: the counter
// follows the broker's count from one scrape to the next.
func TestReconnectsAreReadAtEveryScrape(t *testing.T) {
	c := wsprom.NewCollector()
	var reconnects atomic.Uint64
	c.WatchReconnects(reconnects.Load)
	srv := wsroomtest.NewServer(t, metricsHandler(t, c))
	for _, n := range []uint64{0, 3} {
		reconnects.Store(n)
		if got := flatten(scrape(t, srv.URL))["wsroom_broker_reconnects_total"]; got != float64(n) {
			t.Errorf("wsroom_broker_reconnects_total = %v, want %d", got, n)
		}
	}
}
