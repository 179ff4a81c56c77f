package load

import (
	"bytes"
	"math"
	"strconv"
)

// The chat protocol's server lines, as sent by every benchmarked server.
var (
	joinSuffix    = []byte(" 进入了聊天室")
	leaveSuffix   = []byte(" 离开了聊天室")
	relayInfix    = []byte(" 发送消息:")
	replyPrefix   = []byte("服务端回复")
	replyInfix    = []byte(":你发送的信息是:")
	payloadMarker = []byte("m ")
)

// appendPayload appends the text a sender sends: "m SENDER SEQ UNIXNANO"
// padded with 'x' to at least size bytes. It contains no newline, so a
// server that batches lines with "\n" (gorilla's chat hub) stays parseable.
func appendPayload(b []byte, sender, seq int, unixNano int64, size int) []byte {
	start := len(b)
	b = append(b, payloadMarker...)
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, unixNano, 10)
	if pad := size - (len(b) - start); pad > 0 {
		b = append(b, ' ')
		for range pad - 1 {
			b = append(b, 'x')
		}
	}
	return b
}

// payload is what parsePayload reads back.
type payload struct {
	sender, seq int
	unixNano    int64
}

func parsePayload(p []byte) (payload, bool) {
	rest, ok := bytes.CutPrefix(p, payloadMarker)
	if !ok {
		return payload{}, false
	}
	var fields [3]int64
	for i := range fields {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte{' '})
		n, ok := parseUint(field)
		if !ok {
			return payload{}, false
		}
		fields[i] = n
	}
	return payload{sender: int(fields[0]), seq: int(fields[1]), unixNano: fields[2]}, true
}

// parseUint parses a non-negative decimal int64 without the string
// conversion strconv would need.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// lineKind classifies one server line.
type lineKind int

const (
	lineOther lineKind = iota
	lineJoin
	lineLeave
	lineRelay // "{id} 发送消息:{data}"
	lineReply // "服务端回复{id}:你发送的信息是:{data}"
)

// classify returns the kind of line and, for joins and leaves, the client id
// and, for relays and replies, the data the client sent.
func classify(line []byte) (kind lineKind, idOrData []byte) {
	if id, ok := bytes.CutSuffix(line, joinSuffix); ok {
		return lineJoin, id
	}
	if id, ok := bytes.CutSuffix(line, leaveSuffix); ok {
		return lineLeave, id
	}
	if rest, ok := bytes.CutPrefix(line, replyPrefix); ok {
		if _, data, ok := bytes.Cut(rest, replyInfix); ok {
			return lineReply, data
		}
	}
	if _, data, ok := bytes.Cut(line, relayInfix); ok {
		return lineRelay, data
	}
	return lineOther, nil
}
