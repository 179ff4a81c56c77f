// Package wsroom runs WebSocket broadcast rooms: a [ConnectionManager]
// accepts connections, keeps them in rooms, sends personal messages and
// broadcasts, and never lets a slow or hostile client hurt anyone else.
//
// # Model
//
// A [ConnectionManager] owns every live [Conn] of a process and the rooms
// they are in. [ConnectionManager.Connect] checks a request, upgrades it
// and registers the connection; the handler then reads with [Conn.Read],
// exactly like the tutorial's loop, and joins rooms with
// [ConnectionManager.Join]. [ConnectionManager.Start] does the same with
// the read loop run by the manager, calling the [Hooks] it is given, which
// costs less per idle connection.
//
// Each connection has a bounded outbound queue and at most one writer
// goroutine, which exists only while there is something to write. Sending
// ([ConnectionManager.SendPersonal], [ConnectionManager.Broadcast],
// [ConnectionManager.BroadcastAll]) only queues: it never waits for a
// peer's socket. The writer drains the queue and gathers the frames of
// what it drained into socket writes of up to 64 KiB.
//
// A [Message] is immutable and shared by all its recipients: a broadcast
// to ten thousand connections queues one payload ten thousand times, and
// [JSON] encodes once.
//
// The names, in the order a reader needs them: [ConnectionManager] (with
// [ConnectOptions] and [Hooks]), [Conn] and [Key], rooms
// ([ConnectionManager.Join], [ConnectionManager.Broadcast]), [Message],
// auth ([Authenticator], [CookieOrToken]), options ([Option], [New]),
// [Stats], and [Broker] for many processes. ARCHITECTURE.md in the
// repository follows a message and a connection through the code.
//
// # Quick start
//
//	m, err := wsroom.New()
//	if err != nil { ... }
//	http.HandleFunc("/ws/{id}", func(w http.ResponseWriter, r *http.Request) {
//		c, err := m.Connect(w, r, &wsroom.ConnectOptions{ID: r.PathValue("id")})
//		if err != nil {
//			return // Connect has answered the request
//		}
//		ctx := context.Background() // never r.Context() after the upgrade
//		if err := m.Join(ctx, c, "chat"); err != nil {
//			m.Disconnect(c, websocket.StatusInternalError, "")
//			return
//		}
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
//   - Sending never blocks on a peer. A peer that stops reading delays no
//     one.
//   - Per connection, messages are written in the order they were queued.
//   - Every local member of a room sees that room's broadcasts in the same
//     order. With a [Broker], each process's broadcasts to a room reach
//     every other process in the order it sent them (at most once);
//     broadcasts from two processes may interleave differently on
//     different processes.
//   - Every message is its own WebSocket message: messages are never
//     merged (unless [WithCoalescing] asks for it). A message longer than
//     16 KiB is sent as several frames, so that control frames (pongs, the
//     close frame) never wait behind a whole large message.
//   - Text is UTF-8, always. A peer's text message that is not valid UTF-8
//     fails that connection with 1007 and is never delivered; the check
//     runs as the bytes arrive, so a bad byte fails at once. wsroom never
//     writes a text message that is not UTF-8: sending one fails with
//     [ErrInvalidUTF8].
//   - Every frame is checked against RFC 6455: a reserved bit or opcode, an
//     unmasked frame, a bad fragment sequence or control frame, an
//     invalid close frame fail the connection with 1002; a message over
//     the read limit with 1009. Messages queued before the violation are
//     written first; right after the close frame the server ends its side
//     of the TCP connection, without waiting for the peer's close frame.
//   - A closing connection is silent. From the moment a connection starts
//     closing (Disconnect, an eviction, a protocol error, Shutdown, the
//     peer's close frame), it has left its rooms, takes no more messages,
//     and no message that arrives from it afterwards reaches [Conn.Read]
//     or [Hooks].OnMessage, so nothing it sends then is relayed. The peer's close
//     frame is answered at once, even in the middle of a backlog. Every
//     close is bounded by the close timeout ([WithCloseTimeout]).
//   - Liveness is judged by progress, not silence. A peer whose socket
//     keeps acknowledging bytes is never cut for being slow, however far
//     behind a burst it is; a peer that acknowledges nothing for the write
//     timeout ([WithWriteTimeout]), or answers no ping and makes no
//     progress for the ping timeout ([WithPing]), is dead: its socket is
//     closed. Progress is what the peer acknowledged, as the Linux kernel
//     reports it, over TLS too; elsewhere it is the local socket taking
//     bytes.
//   - Memory is bounded per connection and per process. Each queue is
//     bounded in messages and bytes ([WithQueueLimit]); all queues together
//     by a budget for queued bytes ([WithQueueBudget]); connections by
//     [WithMaxConnections]; a message by the read limit ([WithReadLimit]).
//     A message to a full queue, or a send that takes the process over its
//     budget, triggers the [SlowConsumerPolicy]: [Evict] (default),
//     [DropNewest] or [DropOldest], applied to the connections holding the
//     most first and counted in [Stats].
//   - A connection that fails in any way leaves every room at once; the
//     room keeps working for everyone else. No goroutine outlives its
//     connection.
//   - No callback of the caller's ([Hooks], [RoomEvents], an
//     [Authenticator], a [Broker]'s methods) runs under a lock of the
//     manager's, so it may call back into the manager. A broadcast never waits for the broker: it is
//     delivered locally at once and queued for the broker, which gets it
//     in batches from a goroutine of the manager's; a stalled broker delays
//     no local delivery.
//
// # Security defaults
//
// Cross-origin browser pages are refused with HTTP 403 unless
// [WithOriginPatterns] allows them; clients that send no Origin header
// (tools, not browsers) are accepted. [WithAllowedHosts] refuses requests
// for other Host names, which stops DNS-rebinding pages. Messages above
// the read limit (default 32 KiB) close the connection with 1009.
// Compression is never negotiated. With an [Authenticator]
// ([WithAuthenticator], [CookieOrToken]), a refused request gets HTTP 403
// before any upgrade, or with [CloseAfterAccept] a close 1008 that page
// scripts can see. Credentials never appear in logs or errors, a
// credential that is not UTF-8 is refused, and [StaticToken] compares in
// constant time.
//
// # Close codes
//
//	1000  Normal Closure         Disconnect with 1000; the answer to a peer's 1000
//	1001  Going Away             Shutdown; a Read whose context ended
//	1002  Protocol Error         the peer broke RFC 6455 (reserved bits or opcodes, an unmasked
//	                             frame, bad fragments or control frames, an invalid close frame)
//	1003  Unsupported Data       a text-only endpoint got a binary message (the demos, with Disconnect)
//	1007  Invalid Payload Data   a text message, or a close reason, that is not UTF-8
//	1008  Policy Violation       authentication refused in CloseAfterAccept mode
//	1009  Message Too Big        a message over the read limit
//	1011  Internal Error         Disconnect with 1011 (the demos, when a join fails)
//	1013  Try Again Later        evicted as a slow consumer (reason "slow consumer")
//
// A peer's close frame is answered with its own code. A peer that is dead
// (no progress for the write timeout, or no pong and no progress for the
// ping timeout) gets no close frame: nothing more can reach it, and its
// client sees 1006.
//
// # Many processes
//
// With [WithBroker], room broadcasts reach the members of the room in every
// process that shares the broker: [NewMemoryBroker] within one process (for
// tests), and the redisbroker and natsbroker modules for Redis Pub/Sub
// (Redis Cluster too) and NATS. A process delivers its own broadcasts to its
// local members at once, queues them for the broker ([WithPublishQueue])
// and ignores the broker's echo of them. While the broker fails, or its
// queue is full, Broadcast returns an error matching
// [ErrBrokerUnavailable], local members still get local broadcasts, and
// WebSocket clients stay connected. A Broadcast learns of a failure from
// the last publish that finished, so the one that first reports an outage
// may come after others that did not reach the broker, and one just after
// recovery may still report it. Delivery across processes is at most once,
// in per-room order from each process.
//
// # What to reach for
//
//   - One connection, one reply: [ConnectionManager.SendPersonal].
//   - A chat room, a document's viewers, a game table: a room, joined with
//     [ConnectionManager.Join], and [ConnectionManager.Broadcast].
//   - Everyone connected to this process: [ConnectionManager.BroadcastAll].
//   - Per-connection state (a nickname, a user record): [Key].
//   - Who joins and leaves each room, and why a connection left (closed by
//     its peer, Leave, Disconnect, evicted, a timeout, Shutdown, a
//     protocol error): [WithRoomEvents].
//   - Counters for dashboards: [ConnectionManager.Stats], or Prometheus
//     through the github.com/wsroom/wsroom/prometheus module.
//   - Tests of your own handlers: the [github.com/wsroom/wsroom/wsroomtest]
//     package.
package wsroom
