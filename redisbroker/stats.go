package redisbroker

import "sync/atomic"

type counters struct {
	published, publishErrors, received, dropped, reconnects, unresponsive, moved atomic.Uint64
}

// Stats is a snapshot of a broker's counters. Counts are totals since
// [New], except Connections, Channels and Subscriptions.
type Stats struct {
	Published     uint64 // publications Redis acknowledged (PUBLISH, or SPUBLISH with a cluster)
	PublishErrors uint64 // publications in Publish calls that failed
	Received      uint64 // messages read from the Pub/Sub connections
	Dropped       uint64 // deliveries dropped because a subscription's queue was full
	Reconnects    uint64 // times a Pub/Sub connection worked again after failing
	Unresponsive  uint64 // Pub/Sub connections the health check closed
	Moved         uint64 // channels moved to another cluster master after their slot moved
	Connections   int    // Pub/Sub connections up: one, or one per cluster master the rooms have needed
	Channels      int    // Redis channels subscribed: rooms with an open subscription
	Subscriptions int    // open subscriptions
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	channels, subs, conns := len(b.channels), 0, 0
	for _, ch := range b.channels {
		subs += len(ch.subs)
	}
	for _, l := range b.allLinksLocked() {
		if l.ps != nil {
			conns++
		}
	}
	b.mu.Unlock()
	return Stats{
		Published:     b.stats.published.Load(),
		PublishErrors: b.stats.publishErrors.Load(),
		Received:      b.stats.received.Load(),
		Dropped:       b.stats.dropped.Load(),
		Reconnects:    b.stats.reconnects.Load(),
		Unresponsive:  b.stats.unresponsive.Load(),
		Moved:         b.stats.moved.Load(),
		Connections:   conns,
		Channels:      channels,
		Subscriptions: subs,
	}
}
