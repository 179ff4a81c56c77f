// Package natsbroker carries wsroom room broadcasts between processes over
// core NATS publish/subscribe (not JetStream).
//
// Give every process's [wsroom.ConnectionManager] a [Broker] on its own
// connection to the same NATS server or cluster, made with [ClientOptions]:
//
//	nc, err := nats.Connect("nats://n1:4222,nats://n2:4222", natsbroker.ClientOptions()...)
//	...
//	b, err := natsbroker.New(nc, natsbroker.WithLogger(logger))
//	...
//	m, err := wsroom.New(wsroom.WithBroker(b))
//	...
//	m.Shutdown(ctx)
//	b.Close()
//	nc.Close()
//
// # Publishing
//
// The manager hands broadcasts to [Broker.Publish] in batches, of many
// rooms, one batch at a time. Publish hands each broadcast to nats.go with
// an asynchronous publish, in batch order, with no round trip per
// broadcast, then makes one round trip for the batch (a PING the server
// answers once it has read the batch) and returns once it is answered. A
// batch in flight when its server stops answering thus fails, and is
// counted by the manager, once nats.go finds the connection dead; the
// broadcasts made meanwhile wait in the manager's queue rather than being
// written into the dead connection.
//
// While the connection is down, Publish waits up to 100 ms for it to come
// back (moving to another server of a cluster takes a few milliseconds),
// then fails with an error matching [ErrNotConnected], rather than leaving
// the broadcasts in nats.go's reconnect buffer; the manager then counts the
// batch in Stats.BrokerPublishErrors and the next broadcasts report
// [wsroom.ErrBrokerUnavailable]. Local members get every broadcast either
// way. Publish reads the connection's status from a goroutine of the
// broker's that follows it, so it never waits for nats.go's attempts to
// reconnect to a server that does not answer.
//
// # Client options
//
// The caller owns the connection, so its options decide how an outage goes.
// [ClientOptions] returns what the broker needs: reconnect forever
// (nats.MaxReconnects(-1)); find a server that stops answering, such as a
// paused process or a half-open connection, within 2 to 3 s
// (nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2)), and never
// block a write to it for more than 2 s (nats.FlusherTimeout); and wait
// 250 ms, plus nats.go's jitter, before trying the servers again once they
// all failed (nats.ReconnectWait). With
// [WithLogger], [New] warns of options that fall short. Give nats.Connect
// every server of a cluster, so that a node whose server dies moves to
// another.
//
// # Guarantees
//
// Delivery is at most once across nodes: a broadcast published while a node
// or the server is disconnected is lost for the nodes that did not get it,
// and nothing is redelivered. The broadcasts one node makes to a room reach
// every other node in the order they were made: NATS keeps the order of one
// connection's publishes, each room's deliveries run on one goroutine, and
// each publication carries its broker's sequence number in a NATS header,
// so that one older than a publication already delivered from the same
// broker is dropped (a paused server that resumes after its clients moved
// to another would otherwise deliver what they had written to it, late and
// out of order). Broadcasts from different nodes have no common order.
//
// [Broker.Subscribe] returns after a round trip to the server, so the
// subscription is active there. In a cluster, that server tells the others
// asynchronously (within a few milliseconds in this package's tests, on
// one host): a broadcast made through another server right as Join returns
// may miss the new member. While the connection is down Subscribe returns
// at once instead, without error:
// nats.go sends the subscription when it reconnects, and nothing can be
// published meanwhile by this node. Joins thus keep working during an
// outage.
//
// After the server restarts, or the node moves to another server, nats.go
// resubscribes every room by itself. With [WithLogger], the broker logs the
// connection's loss, return and closing. README.md gives the loss windows
// measured for a restart, a paused server and a cluster failover.
//
// # Errors
//
// Errors start with the package and the operation, and the room where
// there is one, and wrap their cause, as in
// natsbroker: publish to room "lobby": natsbroker: not connected to NATS.
// After [Broker.Close], Publish and Subscribe fail with errors matching [wsroom.ErrClosed]; [New]
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
