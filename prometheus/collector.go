package wsprom

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wsroom/wsroom"
)

// Collector is a prometheus.Collector of one manager's metrics. Create it
// with [NewCollector], pass [Collector.Observer] to [wsroom.New], then
// [Collector.Watch] the manager and register the Collector. It is safe for
// concurrent use: scrapes may run while the manager publishes.
type Collector struct {
	manager    atomic.Pointer[wsroom.ConnectionManager]
	reconnects atomic.Pointer[func() uint64]

	publishDuration prometheus.Histogram
	publishBatch    prometheus.Histogram
}

// NewCollector returns a Collector that watches no manager yet: until
// [Collector.Watch], it exports only its histograms.
func NewCollector() *Collector {
	return &Collector{
		publishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wsroom_broker_publish_duration_seconds",
			Help: "How long each Broker.Publish call took, failed ones included.",
			// From a broker on the same host to the default publish
			// timeout of 5s, and a little beyond for longer timeouts.
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		publishBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wsroom_broker_publish_batch_broadcasts",
			Help: "Broadcasts carried by each Broker.Publish call, failed ones included.",
			// A batch carries at most 1024 broadcasts.
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
	}
}

// Watch makes the Collector read m's [wsroom.ConnectionManager.Stats] at
// every scrape. A later call replaces m: its counters then start again
// from the new manager's, which Prometheus takes as a counter reset.
func (c *Collector) Watch(m *wsroom.ConnectionManager) {
	c.manager.Store(m)
}

// WatchReconnects makes the Collector export wsroom_broker_reconnects_total,
// read from reconnects at every scrape: how many times the broker's
// connection worked again after failing. The broker adapters count it:
//
//	c.WatchReconnects(func() uint64 { return broker.Stats().Reconnects })
//
// for a *redisbroker.Broker or a *natsbroker.Broker. Until it is called,
// the metric is not exported.
func (c *Collector) WatchReconnects(reconnects func() uint64) {
	c.reconnects.Store(&reconnects)
}

// Observer returns the [wsroom.Observer] that feeds the publish histograms;
// pass it to [wsroom.New] with [wsroom.WithObserver]. Its functions are
// cheap and never block. To observe with functions of your own as well,
// call both from one Observer.
func (c *Collector) Observer() wsroom.Observer {
	return wsroom.Observer{Published: c.published}
}

func (c *Collector) published(broadcasts int, took time.Duration, _ error) {
	c.publishDuration.Observe(took.Seconds())
	c.publishBatch.Observe(float64(broadcasts))
}

// Describe sends the description of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	var last *prometheus.Desc
	for _, v := range values {
		if v.desc != last {
			ch <- v.desc
			last = v.desc
		}
	}
	ch <- closesDesc
	ch <- reconnectsDesc
	c.publishDuration.Describe(ch)
	c.publishBatch.Describe(ch)
}

// Collect reads the watched manager's Stats once and sends every metric.
// Labelled counters are sent for every label value, zeros included, except
// wsroom_closes_total, which has a series for each code seen.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if m := c.manager.Load(); m != nil {
		s := m.Stats()
		for _, v := range values {
			ch <- prometheus.MustNewConstMetric(v.desc, v.typ, v.value(&s), v.labels...)
		}
		for code, n := range closeCounts(s.Closes) {
			ch <- prometheus.MustNewConstMetric(closesDesc, prometheus.CounterValue, float64(n), code)
		}
	}
	if f := c.reconnects.Load(); f != nil {
		ch <- prometheus.MustNewConstMetric(reconnectsDesc, prometheus.CounterValue, float64((*f)()))
	}
	ch <- c.publishDuration
	ch <- c.publishBatch
}

// closeCounts groups the closes by the value of their code label.
func closeCounts(closes map[wsroom.StatusCode]uint64) map[string]uint64 {
	counts := make(map[string]uint64, len(closes))
	for code, n := range closes {
		counts[codeLabel(code)] += n
	}
	return counts
}

// codeLabel is a close code's label value. Peers choose the codes they
// send, so only the codes of RFC 6455 are kept one by one: an
// application's own codes are grouped by range, and the set of values
// stays small whatever the peers send.
func codeLabel(code wsroom.StatusCode) string {
	switch {
	case code >= 1000 && code <= 1015:
		return strconv.Itoa(int(code))
	case code >= 3000 && code <= 3999:
		return "3xxx"
	case code >= 4000 && code <= 4999:
		return "4xxx"
	}
	return "other"
}
