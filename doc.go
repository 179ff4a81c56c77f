// Package wsroom runs WebSocket broadcast rooms on top of
// github.com/coder/websocket: a [ConnectionManager] accepts connections,
// keeps them in rooms, sends personal messages and broadcasts, and never
// lets a slow client stall anyone else.
//
// # Model
//
// A [ConnectionManager] owns every live [Conn] of a process and the rooms
// they are in. [ConnectionManager.Connect] authenticates a request, upgrades
// it and registers the connection; the handler then reads with [Conn.Read],
// exactly like the tutorial's loop. [ConnectionManager.Serve] does the same
// with the read loop run by the library and callbacks in a [Handler], which
// costs less per idle connection.
//
// Each connection has a bounded outbound queue and at most one writer
// goroutine, which exists only while the queue has messages. Sending
// ([ConnectionManager.SendPersonal], [ConnectionManager.Broadcast],
// [Room.Broadcast], [ConnectionManager.BroadcastAll]) only queues: it never
// waits for a peer's socket. The writer drains the queue, gathers the frames
// of a drained batch into one socket write (each message stays its own
// WebSocket message), and gives every socket write a deadline.
//
// A [Message] is immutable and shared by all its recipients: a broadcast to
// ten thousand connections queues one payload ten thousand times, and
// [JSON] encodes once.
//
// # Quick start
//
//	m, err := wsroom.New()
//	if err != nil { ... }
//	http.HandleFunc("/ws/{id}", func(w http.ResponseWriter, r *http.Request) {
//		c, err := m.Connect(w, r, wsroom.ConnID(r.PathValue("id")), wsroom.JoinRooms("chat"))
//		if err != nil {
//			return // Connect has answered the request
//		}
//		ctx := context.Background() // never r.Context() after the upgrade
//		for {
//			msg, err := c.Read(ctx)
//			if err != nil {
//				return // c has left its rooms
//			}
//			m.Broadcast(ctx, "chat", wsroom.Text(c.ID()+": "+msg.Text()))
//		}
//	})
//
// # Guarantees
//
//   - Sending never blocks on a peer. A peer that stops reading delays no one.
//   - Per connection, messages are written in the order they were queued.
//   - Every member of a room sees that room's broadcasts in the same order.
//     Across nodes, each node's broadcasts to a room arrive in the order it
//     sent them (at most once; see [Broker]).
//   - Every message is its own WebSocket message; messages are never merged
//     into one frame.
//   - No callback of the caller's ([Handler], [Authenticator], a broker's
//     delivery) runs under a lock of the manager's.
//   - Every queue is bounded in messages and bytes ([WithQueueLimit]). A
//     message sent to a full queue triggers the [SlowConsumerPolicy]:
//     [Evict] (default), [DropNewest] or [DropOldest], counted in [Stats].
//     The defaults absorb bursts of many megabytes per reader; a reader
//     that stopped is found by the write timeout ([WithWriteTimeout]: no
//     byte accepted for 5 s) or by the ping ([WithPing]), whichever first.
//   - A connection that fails in any way (read error, write timeout, ping
//     timeout, eviction) is disconnected and leaves every room; the room
//     keeps working for everyone else.
//
// # Security defaults
//
// Cross-origin browser pages are refused with HTTP 403 unless
// [WithOriginPatterns] allows them; clients that send no Origin header
// (tools, not browsers) are accepted. Messages above the read limit
// (default 32 KiB, [WithReadLimit]) close the connection with 1009.
// Compression is off. With an [Authenticator] ([WithAuthenticator],
// [CookieOrToken]), a refused request gets HTTP 403 before any upgrade, or
// with [CloseAfterAccept] a close 1008 that page scripts can see.
// Credentials never appear in logs or errors; [StaticToken] compares in
// constant time.
//
// # Close codes
//
//	1000  Normal Closure     Disconnect (default status)
//	1001  Going Away         Shutdown
//	1003  Unsupported Data   a text-only endpoint got a binary message (the demos, via Disconnect and Status)
//	1008  Policy Violation   authentication refused in CloseAfterAccept mode
//	1009  Message Too Big    a message over the read limit
//	1011  Internal Error     a read or write failed (usually never seen: the socket is gone)
//	1013  Try Again Later    evicted as a slow consumer (reason "slow consumer")
//
// A peer that does not answer a ping in time, or accepts no byte for the
// write timeout, is closed without a handshake: nothing more can reach it,
// and its client sees 1006.
//
// # Many processes
//
// With [WithBroker], room broadcasts reach the members of the room in every
// process that shares the broker: [NewMemoryBroker] within one process (for
// tests), and the redisbroker and natsbroker modules for Redis Pub/Sub and
// NATS. A node delivers its own broadcasts to its local members at once and
// ignores the broker's echo of them; while the broker is down, Broadcast
// returns an error, local members still get local broadcasts, and
// WebSocket clients stay connected.
//
// # What to reach for
//
//   - One connection, one reply: [ConnectionManager.SendPersonal].
//   - A chat room, a document's viewers, a game table: a room, joined with
//     [JoinRooms] or [Room.Join], and [ConnectionManager.Broadcast].
//   - Everyone connected to this process: [ConnectionManager.BroadcastAll].
//   - Per-connection state (a nickname, a user record): [Key].
//   - Counters for dashboards: [ConnectionManager.Stats].
package wsroom
