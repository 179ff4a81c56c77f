// Package redisbroker is a [wsroom.Broker] over Redis Pub/Sub, built on
// github.com/redis/go-redis/v9. It lets the managers of many processes
// (nodes) share rooms: a broadcast on one node reaches the room's members on
// every node.
//
// With a single Redis server, give [New] a *redis.Client:
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	broker, err := redisbroker.New(client, redisbroker.WithLogger(logger))
//	if err != nil { ... }
//	m, err := wsroom.New(wsroom.WithBroker(broker))
//	...
//	m.Shutdown(ctx)
//	broker.Close()
//	client.Close()
//
// With a Redis Cluster (7.0 or later), give it a *redis.ClusterClient; the
// broker then uses sharded Pub/Sub:
//
//	client := redis.NewClusterClient(&redis.ClusterOptions{
//		Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
//	})
//	broker, err := redisbroker.New(client)
//
// # Model
//
// Each room with local members is one Redis channel, DefaultPrefix (or the
// prefix of [WithPrefix]) followed by the room's name with every byte
// outside [A-Za-z0-9] and "-._~:" written as %XX: room "chat general" is
// channel "wsroom:chat%20general". The first subscription to a room
// subscribes its channel, the last one's Close unsubscribes it, and
// Subscribe returns only after Redis has confirmed.
//
// With one server, a broker holds one Pub/Sub connection for all its rooms
// (SUBSCRIBE), and [Broker.Publish] sends a batch of broadcasts as one
// pipeline of PUBLISH commands on the client's connection pool: one round
// trip. With a cluster, a room's channel is a shard channel: it lives on the
// master that owns its slot. The broker holds one Pub/Sub connection to
// each master its rooms have needed (SSUBSCRIBE), and Publish sends each
// master its part of the batch as one pipeline of SPUBLISH commands, to all
// of them at once.
//
// # Guarantees
//
//   - Per-room order from one node: the broadcasts one node makes to a room
//     reach every other node in the order they were made, also on a
//     cluster, across failovers and slot moves. Publish keeps batch order
//     on one connection per server, and a batch starts only after the one
//     before it has ended. Nothing is resent: no retry, and with a cluster
//     no MOVED or ASK redirect is followed, since that would send those
//     broadcasts after later ones of the same room. Broadcasts from
//     different nodes are interleaved in the order Redis received them.
//   - At most once: a message is never delivered twice. A Broadcast whose
//     publish failed may or may not have reached the other nodes.
//   - No miss after Subscribe: a publish that starts after Subscribe returns,
//     from any node, is delivered (while Redis is reachable).
//   - Reconnection: when a Pub/Sub connection fails, the broker dials again
//     with backoff (50 ms doubling to 500 ms) and subscribes every channel of
//     it again, without any call from the manager. With a cluster, it first
//     looks up which master owns each channel now, in the cluster client's
//     slot map (reloaded after the failure), and moves the channels whose
//     master changed (a failover, a resharding) to that master's
//     connection. Messages published while a node's connection is
//     down are lost for that node: Redis Pub/Sub keeps nothing. With
//     [WithLogger], the loss and the recovery are logged.
//   - Health check: a Pub/Sub connection that gives no reply for
//     [WithHealthCheck]'s interval (default 1 s) is sent a PING; one silent
//     for twice the interval is closed and replaced. So a Redis that stops
//     answering while its connections stay open (a frozen process, a dead
//     network path: a half-open connection) is found within 2.25 intervals,
//     2.25 s by default.
//   - While Redis is unreachable, Publish fails (bounded by its context and
//     the client's dial and read timeouts), so Broadcast reports
//     [wsroom.ErrBrokerUnavailable]; local members still get local
//     broadcasts, and WebSocket clients stay connected. Subscribe succeeds at
//     once once the broker's last attempt to connect has failed, so rooms can
//     still be joined; such a subscription becomes active when the
//     connection returns.
//
// The package's README gives the loss windows measured by its tests: a
// restarted server, a frozen one, and a cluster master killed.
//
// # Errors
//
// Errors start with the package and the operation, and the room where
// there is one, and wrap their cause, as in
// redisbroker: publish to room "lobby": dial tcp ...: connection refused.
// After [Broker.Close], Publish and Subscribe fail with errors matching
// [wsroom.ErrClosed]; [New] reports an invalid option with one matching
// [wsroom.ErrInvalidOption].
package redisbroker
