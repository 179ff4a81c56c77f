package wsroom

import (
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
)

// MessageType is the WebSocket frame type of a message: [websocket.MessageText]
// or [websocket.MessageBinary].
type MessageType = websocket.MessageType

// Message is one WebSocket message: a type and a payload.
//
// A Message is immutable once built and is shared, not copied, by every
// recipient of a broadcast: the constructors copy what they are given, and
// the payload returned by [Message.Bytes] must not be modified. The zero
// Message is an empty text message.
type Message struct {
	binary bool
	data   []byte
}

// Text returns a text message holding s.
func Text(s string) Message {
	return Message{data: []byte(s)}
}

// Binary returns a binary message holding a copy of b.
func Binary(b []byte) Message {
	return Message{binary: true, data: append([]byte(nil), b...)}
}

// JSON returns a text message holding v encoded with encoding/json. It
// encodes once, however many connections the message is later sent to.
func JSON(v any) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("wsroom: encode JSON message: %w", err)
	}
	return Message{data: b}, nil
}

// Type reports whether m is a text or a binary message.
func (m Message) Type() MessageType {
	if m.binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// IsText reports whether m is a text message.
func (m Message) IsText() bool { return !m.binary }

// Text returns the payload as a string.
func (m Message) Text() string { return string(m.data) }

// Bytes returns the payload. The slice is shared with every other holder of
// the message and must not be modified.
func (m Message) Bytes() []byte { return m.data }

// Len returns the payload's length in bytes.
func (m Message) Len() int { return len(m.data) }

// Decode unmarshals the JSON payload into v.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.data, v); err != nil {
		return fmt.Errorf("wsroom: decode JSON message: %w", err)
	}
	return nil
}
