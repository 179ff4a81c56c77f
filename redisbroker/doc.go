// Package redisbroker is a [wsroom.Broker] over Redis Pub/Sub, built on
// github.com/redis/go-redis/v9. It lets the managers of many processes
// (nodes) share rooms: a broadcast on one node reaches the room's members on
// every node.
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
// # Model
//
// Each room with local members is one Redis channel, DefaultPrefix (or the
// prefix of [WithPrefix]) followed by the room's name with every byte
// outside [A-Za-z0-9] and "-._~:" written as %XX: room "chat general" is
// channel "wsroom:chat%20general". A broker holds one Pub/Sub connection for
// all its rooms. The first subscription to a room SUBSCRIBEs its channel,
// the last one's Close UNSUBSCRIBEs it, and Subscribe returns only after
// Redis has confirmed. Publish sends PUBLISH on the client's ordinary
// connection pool and waits for Redis's answer.
//
// # Guarantees
//
//   - Per-room order from one node: the broadcasts one node makes to a room
//     reach every other node in the order they were made. Broadcasts from
//     different nodes are interleaved in the order Redis received them.
//   - At most once: a message is never delivered twice. PUBLISH is never
//     retried (a retry after a lost reply could deliver twice), so a
//     Broadcast that fails may or may not have been delivered.
//   - No miss after Subscribe: a publish that starts after Subscribe returns,
//     from any node, is delivered.
//   - Reconnection: when the Pub/Sub connection drops, the broker dials again
//     with backoff (50 ms doubling to 500 ms) and go-redis SUBSCRIBEs the
//     new connection to every channel before anything else, without any
//     call from the manager. Messages published while a node's connection
//     is down are lost for that node: Redis Pub/Sub keeps nothing. With
//     [WithLogger], the loss and the recovery are logged.
//   - While Redis is unreachable, Publish fails promptly (bounded by its
//     context and the client's dial timeout), local members still get local
//     broadcasts, and WebSocket clients stay connected. Subscribe succeeds at
//     once so rooms can still be joined; such a subscription becomes active
//     when the connection returns.
//
// A Pub/Sub connection whose peer vanished without FIN or RST (half-open) is
// noticed only by TCP keepalive: about 45 s with go-redis's default dialer.
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
