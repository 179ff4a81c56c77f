package wsroom

import "sync/atomic"

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
}

// Stats is a snapshot of a manager's counters. Counts are totals since
// [New], except Connections, Rooms and QueuedBytes, which are current.
type Stats struct {
	Connections int   // connections registered and not yet closing
	Rooms       int   // rooms with local members
	QueuedBytes int64 // payload bytes in queues, each payload counted once (see WithQueueBudget)

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
	BrokerPublishErrors uint64 // broadcasts the broker refused
	BrokerReceived      uint64 // broadcasts from other nodes delivered here
	BrokerMalformed     uint64 // broker payloads dropped because they did not parse
}

// Stats returns the manager's counters.
func (m *ConnectionManager) Stats() Stats {
	m.mu.RLock()
	conns := len(m.conns)
	m.mu.RUnlock()
	s := &m.stats
	return Stats{
		Connections:         conns,
		Rooms:               int(m.activeRooms.Load()),
		QueuedBytes:         m.queuedBytes.Load(),
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
		BrokerPublishErrors: s.brokerPublishErrors.Load(),
		BrokerReceived:      s.brokerReceived.Load(),
		BrokerMalformed:     s.brokerMalformed.Load(),
	}
}
