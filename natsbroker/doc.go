// Package natsbroker carries wsroom room broadcasts between processes over
// core NATS publish/subscribe (not JetStream).
//
// Give every process's [wsroom.ConnectionManager] a [Broker] on its own
// connection to the same NATS system:
//
//	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
//	...
//	b, err := natsbroker.New(nc, natsbroker.WithLogger(logger))
//	...
//	m, err := wsroom.New(wsroom.WithBroker(b))
//	...
//	m.Shutdown(ctx)
//	b.Close()
//	nc.Close()
//
// # Guarantees
//
// Delivery is at most once across nodes: a broadcast published while a node
// or the server is disconnected is lost for the nodes that did not get it,
// and nothing is redelivered. The broadcasts one node makes to a room reach
// every other node in the order they were made (NATS keeps the order of one
// connection's publishes, and each room's deliveries run on one goroutine).
// Broadcasts from different nodes have no common order.
//
// [Broker.Publish] fails at once with an error matching [ErrNotConnected]
// while the connection is down, rather than leaving the payload in nats.go's
// reconnect buffer, so [wsroom.ConnectionManager.Broadcast] reports the
// outage; local members get the broadcast either way.
//
// [Broker.Subscribe] returns after a round trip to the server, so the
// subscription is active there. While the connection is down it returns at
// once instead, without error: nats.go sends the subscription when it
// reconnects, and nothing can be published meanwhile by this node. Joins
// thus keep working during an outage.
//
// After the server restarts, nats.go reconnects and resubscribes every room
// by itself, provided reconnection is enabled: use nats.MaxReconnects(-1),
// since nats.go gives up after 60 attempts by default and then closes the
// connection for good. With [WithLogger], the broker logs the connection's
// loss, return and closing.
//
// # Errors
//
// Errors start with the package and the operation, and the room where
// there is one, and wrap their cause, as in
// natsbroker: publish to room "lobby": natsbroker: not connected to NATS.
// After [Broker.Close],
// Publish and Subscribe fail with errors matching [wsroom.ErrClosed]; [New]
// reports an invalid option with one matching [wsroom.ErrInvalidOption].
//
// # Subjects
//
// A room is published on prefix + "." + the room's name in unpadded
// base64url (RFC 4648 §5): "wsroom.bG9iYnk" for the room "lobby". The
// encoding is one subject token made of A-Z a-z 0-9 - and _, so names that
// hold ".", "*", ">", spaces or any UTF-8 never collide and never act as
// wildcards. [Broker.Subject] gives the subject of a room.
package natsbroker
