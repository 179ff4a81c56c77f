package redisbroker

import "sync/atomic"

type counters struct {
	published, publishErrors, received, dropped, reconnects atomic.Uint64
}

// Stats is a snapshot of a broker's counters. Counts are totals since
// [New], except Channels and Subscriptions.
type Stats struct {
	Published     uint64 // PUBLISH commands Redis accepted
	PublishErrors uint64 // Publish calls that failed
	Received      uint64 // messages read from the Pub/Sub connection
	Dropped       uint64 // deliveries dropped because a subscription's queue was full
	Reconnects    uint64 // times the Pub/Sub connection worked again after failing
	Channels      int    // Redis channels subscribed: rooms with an open subscription
	Subscriptions int    // open subscriptions
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	channels, subs := len(b.channels), 0
	for _, s := range b.channels {
		subs += len(s)
	}
	b.mu.Unlock()
	return Stats{
		Published:     b.stats.published.Load(),
		PublishErrors: b.stats.publishErrors.Load(),
		Received:      b.stats.received.Load(),
		Dropped:       b.stats.dropped.Load(),
		Reconnects:    b.stats.reconnects.Load(),
		Channels:      channels,
		Subscriptions: subs,
	}
}
