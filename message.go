package wsroom

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// MessageType is the type of a WebSocket message, as defined by
// coder/websocket.
type MessageType = websocket.MessageType

// The two message types.
const (
	MessageText   = websocket.MessageText
	MessageBinary = websocket.MessageBinary
)

// Message is one WebSocket message: a type and a payload.
//
// A Message is immutable once built and is shared, not copied, by every
// recipient of a broadcast: the constructors copy what they are given, and
// the payload returned by [Message.Bytes] must not be modified. The zero
// Message is an empty text message.
//
// A text message is always valid UTF-8 on the wire. [Text] accepts any
// string, but a message built from one that is not valid UTF-8 is refused
// by every send with [ErrInvalidUTF8].
type Message struct {
	p *payload
}

// payload is what a Message points to, shared by every queue it is in.
type payload struct {
	data    []byte
	binary  bool
	badUTF8 bool // a text message whose bytes are not UTF-8: never sent

	// The writers of a broadcast's recipients update refs from every
	// core while others read data: keep them a cache line apart.
	_ [64]byte

	// refs counts the queues holding the payload. While it is above
	// zero, the payload's bytes count against the budget of owner, the
	// first manager that queued it.
	refs  atomic.Int32
	owner atomic.Pointer[ConnectionManager]
}

// Text returns a text message holding s. If s is not valid UTF-8, sending
// the message fails with [ErrInvalidUTF8]; it is checked once here, not per
// recipient.
func Text(s string) Message {
	return Message{&payload{data: []byte(s), badUTF8: !utf8.ValidString(s)}}
}

// Binary returns a binary message holding a copy of b.
func Binary(b []byte) Message {
	return Message{&payload{data: append([]byte(nil), b...), binary: true}}
}

// JSON returns a text message holding v encoded with encoding/json. It
// encodes once, however many connections the message is later sent to.
func JSON(v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("wsroom: encode JSON message: %w", err)
	}
	// encoding/json writes valid UTF-8 whatever the strings it encodes.
	return Message{&payload{data: b}}, nil
}

// received wraps a message read from a peer, already checked to be UTF-8
// if it is text.
func received(binary bool, data []byte) Message {
	return Message{&payload{data: data, binary: binary}}
}

// Type reports whether m is a text or a binary message.
func (m Message) Type() MessageType {
	if m.p != nil && m.p.binary {
		return MessageBinary
	}
	return MessageText
}

// Text returns the payload as a string.
func (m Message) Text() string { return string(m.Bytes()) }

// Bytes returns the payload. The slice is shared with every other holder of
// the message and must not be modified.
func (m Message) Bytes() []byte {
	if m.p == nil {
		return nil
	}
	return m.p.data
}

// Len returns the payload's length in bytes.
func (m Message) Len() int { return len(m.Bytes()) }

// Decode unmarshals the JSON payload into v.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Bytes(), v); err != nil {
		return fmt.Errorf("wsroom: decode JSON message: %w", err)
	}
	return nil
}

func (m Message) binary() bool { return m.p != nil && m.p.binary }

// sendable returns nil if m may be written to a peer.
func (m Message) sendable() error {
	if m.p != nil && m.p.badUTF8 {
		return ErrInvalidUTF8
	}
	return nil
}
