package wsprom

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wsroom/wsroom"
)

// The metrics read from Stats. README.md lists them; keep it in step.

// value is one series read from Stats: a metric, and its label value if
// the metric has a label.
type value struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	labels []string
	value  func(s *wsroom.Stats) float64
}

var (
	connectionsDesc = gaugeDesc("wsroom_connections",
		"Connections registered and not yet closing.")
	roomsDesc = gaugeDesc("wsroom_rooms",
		"Rooms with members on this manager.")
	queuedBytesDesc = gaugeDesc("wsroom_queued_bytes",
		"Payload bytes in all outbound queues or taken by writers, a payload shared by several queues counted once (what WithQueueBudget bounds, plus what the writers of closing connections still hold).")
	queueMaxMessagesDesc = gaugeDesc("wsroom_queue_max_messages",
		"Messages in the longest outbound queue.")
	queueMaxBytesDesc = gaugeDesc("wsroom_queue_max_bytes",
		"Payload bytes in the fullest outbound queue.")

	acceptedDesc = counterDesc("wsroom_connections_accepted_total",
		"Connections upgraded to WebSocket.")
	refusedDesc = counterDesc("wsroom_connections_refused_total",
		"Requests refused, by reason: handshake (not a valid WebSocket handshake, or an invalid ID), shutdown, host (WithAllowedHosts), origin, max_connections (WithMaxConnections), auth (the Authenticator refused; under CloseAfterAccept the connection was also accepted).",
		"reason")
	receivedDesc = counterDesc("wsroom_messages_received_total",
		"Messages read from peers and handed to the application.")
	queuedDesc = counterDesc("wsroom_messages_queued_total",
		"Messages queued to connections, one per recipient.")
	sentDesc = counterDesc("wsroom_messages_sent_total",
		"Messages written to sockets.")
	receivedBytesDesc = counterDesc("wsroom_received_bytes_total",
		"Bytes read from WebSocket connections, frame headers and control frames included, the HTTP handshake not.")
	sentBytesDesc = counterDesc("wsroom_sent_bytes_total",
		"Bytes written to WebSocket connections, frame headers and control frames included, the HTTP handshake not.")
	slowConsumerDesc = counterDesc("wsroom_slow_consumer_total",
		"Actions of the slow-consumer policy on a full queue, by outcome: dropped_newest and dropped_oldest count messages dropped, evicted counts connections closed with 1013.",
		"outcome")
	overBudgetDesc = counterDesc("wsroom_queue_over_budget_total",
		"Times the queued bytes went over WithQueueBudget.")
	invalidUTF8Desc = counterDesc("wsroom_invalid_utf8_sends_total",
		"Text messages the application tried to send that were not UTF-8, refused.")
	protocolErrorsDesc = counterDesc("wsroom_protocol_errors_total",
		"Connections failed for breaking RFC 6455 (closed with 1002, 1007 or 1009).")
	timeoutsDesc = counterDesc("wsroom_timeouts_total",
		"Timeouts, by kind: ping (a peer that answered no ping and made no progress, closed), write (a peer that acknowledged no data for the write timeout, closed), close (a close that took the whole close timeout).",
		"kind")

	brokerPublishedDesc = counterDesc("wsroom_broker_published_total",
		"Broadcasts the broker took.")
	brokerBatchesDesc = counterDesc("wsroom_broker_publish_batches_total",
		"Broker.Publish calls that succeeded, each carrying one or more broadcasts.")
	brokerPublishErrorsDesc = counterDesc("wsroom_broker_publish_errors_total",
		"Broadcasts in Broker.Publish calls that failed.")
	brokerQueueFullDesc = counterDesc("wsroom_broker_queue_full_total",
		"Broadcasts not handed to the broker because the publish queue was full (delivered locally only).")
	brokerReceivedDesc = counterDesc("wsroom_broker_received_total",
		"Broadcasts from other nodes delivered here.")
	brokerMalformedDesc = counterDesc("wsroom_broker_malformed_total",
		"Broker payloads dropped: not an envelope, another envelope version, or text that is not UTF-8.")

	closesDesc = counterDesc("wsroom_closes_total",
		"Connections ended, by the close code of their close handshake: 1006 when there was none; 3xxx and 4xxx group the codes of those ranges, other the rest.",
		"code")

	reconnectsDesc = counterDesc("wsroom_broker_reconnects_total",
		"Times the broker's connection worked again after failing, as the broker counts them (see Collector.WatchReconnects).")
)

func gaugeDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, nil, nil)
}

func counterDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func gauge(d *prometheus.Desc, f func(s *wsroom.Stats) float64) value {
	return value{desc: d, typ: prometheus.GaugeValue, value: f}
}

func counter(d *prometheus.Desc, f func(s *wsroom.Stats) uint64, labels ...string) value {
	return value{desc: d, typ: prometheus.CounterValue, labels: labels,
		value: func(s *wsroom.Stats) float64 { return float64(f(s)) }}
}

// values are the series read from Stats, those of a metric together.
var values = []value{
	gauge(connectionsDesc, func(s *wsroom.Stats) float64 { return float64(s.Connections) }),
	gauge(roomsDesc, func(s *wsroom.Stats) float64 { return float64(s.Rooms) }),
	gauge(queuedBytesDesc, func(s *wsroom.Stats) float64 { return float64(s.QueuedBytes) }),
	gauge(queueMaxMessagesDesc, func(s *wsroom.Stats) float64 { return float64(s.MaxQueueLength) }),
	gauge(queueMaxBytesDesc, func(s *wsroom.Stats) float64 { return float64(s.MaxQueueBytes) }),

	counter(acceptedDesc, func(s *wsroom.Stats) uint64 { return s.Accepted }),
	counter(refusedDesc, func(s *wsroom.Stats) uint64 { return s.RefusedHandshake }, "handshake"),
	counter(refusedDesc, func(s *wsroom.Stats) uint64 { return s.RefusedShutdown }, "shutdown"),
	counter(refusedDesc, func(s *wsroom.Stats) uint64 { return s.RefusedHost }, "host"),
	counter(refusedDesc, func(s *wsroom.Stats) uint64 { return s.RefusedOrigin }, "origin"),
	counter(refusedDesc, func(s *wsroom.Stats) uint64 { return s.RefusedFull }, "max_connections"),
	counter(refusedDesc, func(s *wsroom.Stats) uint64 { return s.AuthFailures }, "auth"),
	counter(receivedDesc, func(s *wsroom.Stats) uint64 { return s.Received }),
	counter(queuedDesc, func(s *wsroom.Stats) uint64 { return s.Queued }),
	counter(sentDesc, func(s *wsroom.Stats) uint64 { return s.Sent }),
	counter(receivedBytesDesc, func(s *wsroom.Stats) uint64 { return s.BytesIn }),
	counter(sentBytesDesc, func(s *wsroom.Stats) uint64 { return s.BytesOut }),
	counter(slowConsumerDesc, func(s *wsroom.Stats) uint64 { return s.DroppedNewest }, "dropped_newest"),
	counter(slowConsumerDesc, func(s *wsroom.Stats) uint64 { return s.DroppedOldest }, "dropped_oldest"),
	counter(slowConsumerDesc, func(s *wsroom.Stats) uint64 { return s.Evicted }, "evicted"),
	counter(overBudgetDesc, func(s *wsroom.Stats) uint64 { return s.OverBudget }),
	counter(invalidUTF8Desc, func(s *wsroom.Stats) uint64 { return s.InvalidUTF8 }),
	counter(protocolErrorsDesc, func(s *wsroom.Stats) uint64 { return s.ProtocolErrors }),
	counter(timeoutsDesc, func(s *wsroom.Stats) uint64 { return s.PingTimeouts }, "ping"),
	counter(timeoutsDesc, func(s *wsroom.Stats) uint64 { return s.WriteTimeouts }, "write"),
	counter(timeoutsDesc, func(s *wsroom.Stats) uint64 { return s.CloseTimeouts }, "close"),

	counter(brokerPublishedDesc, func(s *wsroom.Stats) uint64 { return s.BrokerPublished }),
	counter(brokerBatchesDesc, func(s *wsroom.Stats) uint64 { return s.BrokerBatches }),
	counter(brokerPublishErrorsDesc, func(s *wsroom.Stats) uint64 { return s.BrokerPublishErrors }),
	counter(brokerQueueFullDesc, func(s *wsroom.Stats) uint64 { return s.BrokerQueueFull }),
	counter(brokerReceivedDesc, func(s *wsroom.Stats) uint64 { return s.BrokerReceived }),
	counter(brokerMalformedDesc, func(s *wsroom.Stats) uint64 { return s.BrokerMalformed }),
}
