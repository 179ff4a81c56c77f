// Package wsprom exports a wsroom [wsroom.ConnectionManager]'s counters to
// Prometheus: connections, refusals, messages, bytes, queues, slow
// consumers, closes, timeouts and the broker, read from
// [wsroom.ConnectionManager.Stats] at each scrape, plus histograms of the
// broker's publish latency and batch size fed by a [wsroom.Observer].
//
// The package is named wsprom, not prometheus, so that it can be imported
// beside client_golang's prometheus package, which every user of it also
// imports, without renaming either. Import it as
//
//	wsprom "github.com/wsroom/wsroom/prometheus"
//
// It lives in a module of its own so that the core, github.com/wsroom/wsroom,
// never depends on client_golang: only programs that import this module
// pull it in.
//
// # Quick start
//
//	c := wsprom.NewCollector()
//	m, err := wsroom.New(wsroom.WithObserver(c.Observer()))
//	if err != nil { ... }
//	c.Watch(m)
//	prometheus.MustRegister(c)
//	http.Handle("GET /metrics", promhttp.Handler())
//
// The Observer is handed to [wsroom.New] because the manager takes it at
// construction; Watch comes after, once the manager exists. A manager
// without a broker never publishes, and its histograms stay empty.
//
// # Metrics
//
// Every name starts with wsroom_, counters end in _total, and sizes and
// durations are in bytes and seconds. No metric has a per-room or
// per-connection label: every label has a small, fixed set of values, so
// the number of series is bounded whatever the traffic. Close codes, which
// a peer chooses, are grouped: the codes of RFC 6455 (1000 to 1015) are
// kept, 3000 to 3999 are "3xxx", 4000 to 4999 are "4xxx" and anything
// else is "other". The package's README.md lists every metric.
//
// Counts are read from Stats at scrape time, so a scrape costs one walk of
// the manager's connections (to find the longest queue) and nothing is
// counted twice; sending a message costs nothing more than it does without
// the collector.
//
// # Several managers
//
// A Collector watches one manager. For several in one process, give each
// its own Collector and register each under a label of its own, with
// prometheus.WrapRegistererWith(prometheus.Labels{"manager": "chat"}, reg).
package wsprom
