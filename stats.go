package wsroom

import (
	"maps"
	"sync"
	"sync/atomic"
)

// counters are a manager's running totals.
type counters struct {
	accepted                                                                   atomic.Uint64
	refusedHandshake, refusedShutdown, refusedHost, refusedOrigin, refusedFull atomic.Uint64
	authFailures                                                               atomic.Uint64
	queued, sent                                                               atomic.Uint64
	droppedNewest, droppedOldest, evicted, overBudget                          atomic.Uint64
	invalidUTF8, protocolErrors                                                atomic.Uint64
	pingTimeouts, writeTimeouts, closeTimeouts                                 atomic.Uint64
	brokerPublished, brokerPublishErrors, brokerReceived, brokerMalformed      atomic.Uint64
	brokerBatches, brokerQueueFull                                             atomic.Uint64
	received, bytesIn, bytesOut, writes                                        atomic.Uint64

	closesMu sync.Mutex
	closes   map[StatusCode]uint64
}

// closed counts a connection's end by its close code.
func (s *counters) closed(code StatusCode) {
	s.closesMu.Lock()
	defer s.closesMu.Unlock()
	if s.closes == nil {
		s.closes = make(map[StatusCode]uint64)
	}
	s.closes[code]++
}

// Stats is a snapshot of a manager's counters. Counts are totals since
// [New], except Connections, Rooms, QueuedBytes and the MaxQueue fields,
// which are current. Stats walks the connections to find the longest
// queue: it is for dashboards, read every few seconds, not per message.
type Stats struct {
	Connections    int                   // connections registered and not yet closing
	Rooms          int                   // rooms with local members
	QueuedBytes    int64                 // payload bytes in queues or taken by writers and not yet copied out, each payload counted once (see WithQueueBudget); a closing connection's until it ends
	MaxQueueLength int                   // messages in the longest queue
	MaxQueueBytes  int                   // payload bytes in the fullest queue
	Received       uint64                // messages read from peers and returned by Read (or passed to OnMessage)
	BytesIn        uint64                // bytes read from sockets, frames and control frames included
	BytesOut       uint64                // bytes written to sockets, frames and control frames included
	Writes         uint64                // socket writes: the writers gather a queue's messages, so far fewer than Sent under load
	Closes         map[StatusCode]uint64 // connections ended, by the close code of their close handshake; 1006 when there was none

	Accepted         uint64 // connections upgraded
	RefusedHandshake uint64 // requests that were not a valid handshake, or had an invalid ID
	RefusedShutdown  uint64 // requests refused because the manager was shut down
	RefusedHost      uint64 // requests whose Host WithAllowedHosts does not allow
	RefusedOrigin    uint64 // requests from a foreign Origin
	RefusedFull      uint64 // requests refused at WithMaxConnections
	AuthFailures     uint64 // requests the Authenticator refused

	Queued        uint64 // messages queued to connections (one per recipient)
	Sent          uint64 // messages written to sockets
	DroppedNewest uint64 // messages dropped under DropNewest
	DroppedOldest uint64 // messages dropped under DropOldest
	Evicted       uint64 // connections evicted as slow consumers
	OverBudget    uint64 // times the queued bytes went over WithQueueBudget

	InvalidUTF8    uint64 // text messages refused by a send because they were not UTF-8
	ProtocolErrors uint64 // connections failed for breaking RFC 6455 (1002, 1007, 1009)
	PingTimeouts   uint64 // connections closed for answering no ping and making no progress
	WriteTimeouts  uint64 // connections closed for acknowledging no data for the write timeout
	CloseTimeouts  uint64 // closes that took the whole close timeout

	BrokerPublished     uint64 // broadcasts the broker took
	BrokerBatches       uint64 // Publish calls that succeeded (each carries one or more broadcasts)
	BrokerPublishErrors uint64 // broadcasts in Publish calls that failed
	BrokerQueueFull     uint64 // broadcasts not queued for the broker because the publish queue was full
	BrokerReceived      uint64 // broadcasts from other nodes delivered here
	BrokerMalformed     uint64 // broker payloads dropped: not an envelope, another envelope version, or text that is not UTF-8
}

// Stats returns the manager's counters.
func (m *ConnectionManager) Stats() Stats {
	m.mu.RLock()
	conns := len(m.conns)
	maxLen, maxBytes := 0, 0
	for c := range m.conns {
		n, bytes := c.queue.loadDepth()
		maxLen, maxBytes = max(maxLen, n), max(maxBytes, bytes)
	}
	m.mu.RUnlock()
	s := &m.stats
	s.closesMu.Lock()
	closes := maps.Clone(s.closes)
	s.closesMu.Unlock()
	return Stats{
		Connections:         conns,
		Rooms:               int(m.activeRooms.Load()),
		QueuedBytes:         m.queuedBytes.Load(),
		MaxQueueLength:      maxLen,
		MaxQueueBytes:       maxBytes,
		Received:            s.received.Load(),
		BytesIn:             s.bytesIn.Load(),
		BytesOut:            s.bytesOut.Load(),
		Writes:              s.writes.Load(),
		Closes:              closes,
		Accepted:            s.accepted.Load(),
		RefusedHandshake:    s.refusedHandshake.Load(),
		RefusedShutdown:     s.refusedShutdown.Load(),
		RefusedHost:         s.refusedHost.Load(),
		RefusedOrigin:       s.refusedOrigin.Load(),
		RefusedFull:         s.refusedFull.Load(),
		AuthFailures:        s.authFailures.Load(),
		Queued:              s.queued.Load(),
		Sent:                s.sent.Load(),
		DroppedNewest:       s.droppedNewest.Load(),
		DroppedOldest:       s.droppedOldest.Load(),
		Evicted:             s.evicted.Load(),
		OverBudget:          s.overBudget.Load(),
		InvalidUTF8:         s.invalidUTF8.Load(),
		ProtocolErrors:      s.protocolErrors.Load(),
		PingTimeouts:        s.pingTimeouts.Load(),
		WriteTimeouts:       s.writeTimeouts.Load(),
		CloseTimeouts:       s.closeTimeouts.Load(),
		BrokerPublished:     s.brokerPublished.Load(),
		BrokerBatches:       s.brokerBatches.Load(),
		BrokerPublishErrors: s.brokerPublishErrors.Load(),
		BrokerQueueFull:     s.brokerQueueFull.Load(),
		BrokerReceived:      s.brokerReceived.Load(),
		BrokerMalformed:     s.brokerMalformed.Load(),
	}
}
