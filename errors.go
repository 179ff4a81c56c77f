package wsroom

import "errors"

// Errors returned by wsroom. Match them with errors.Is: the errors returned
// wrap them with context.
var (
	// ErrClosed reports a manager that is shut down, or a connection that
	// this side closed or is closing (Disconnect, eviction, a timeout, a
	// peer's protocol error, Shutdown).
	ErrClosed = errors.New("wsroom: closed")

	// ErrSlowConsumer reports a message not queued because the
	// connection's queue, or the process's budget for queued bytes, was
	// full: the connection was evicted, or under [DropNewest] the message
	// was dropped.
	ErrSlowConsumer = errors.New("wsroom: slow consumer")

	// ErrInvalidOption reports an option that [New] refused.
	ErrInvalidOption = errors.New("wsroom: invalid option")

	// ErrInvalidRoom reports a room name that is empty, longer than 255
	// bytes, or not valid UTF-8.
	ErrInvalidRoom = errors.New("wsroom: invalid room name")

	// ErrInvalidID reports a connection ID longer than 255 bytes or not
	// valid UTF-8.
	ErrInvalidID = errors.New("wsroom: invalid connection ID")

	// ErrInvalidUTF8 reports a text message that is not valid UTF-8.
	// wsroom never writes one: sending it fails with this error.
	ErrInvalidUTF8 = errors.New("wsroom: text message is not valid UTF-8")

	// ErrInvalidStatus reports a close code that may not be sent in a
	// close frame, or a reason longer than 123 bytes or not valid UTF-8.
	ErrInvalidStatus = errors.New("wsroom: invalid close status")

	// ErrRefused reports a handshake that [ConnectionManager.Connect] or
	// [ConnectionManager.Start] refused before the upgrade, for a reason
	// other than authentication: a Host or Origin that is not allowed, the
	// connection limit, or a request that is not a WebSocket handshake.
	ErrRefused = errors.New("wsroom: handshake refused")

	// ErrBrokerUnavailable reports a broadcast that may not reach the
	// other processes: the publish queue is full ([WithPublishQueue]), or
	// the broker's last Publish failed. Its local members got it all the
	// same.
	ErrBrokerUnavailable = errors.New("wsroom: broker unavailable")

	// ErrProtocol reports a peer that broke RFC 6455: a reserved bit or
	// opcode, an unmasked frame, a bad fragment sequence or control frame,
	// an invalid close frame, text that is not UTF-8, or a message over the
	// read limit. The connection was failed with 1002, 1007 or 1009.
	ErrProtocol = errors.New("wsroom: protocol error")

	// ErrPingTimeout reports a connection closed because its peer
	// answered no ping and made no progress for the ping timeout
	// ([WithPing]). It comes with [ErrClosed].
	ErrPingTimeout = errors.New("wsroom: ping timeout")

	// ErrWriteTimeout reports a connection closed because its peer
	// acknowledged nothing written to it for the write timeout
	// ([WithWriteTimeout]). It comes with [ErrClosed].
	ErrWriteTimeout = errors.New("wsroom: write timeout")

	// ErrShutdown reports a connection closed by
	// [ConnectionManager.Shutdown]. It comes with [ErrClosed].
	ErrShutdown = errors.New("wsroom: shutdown")
)
