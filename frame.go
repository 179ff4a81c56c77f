package wsroom

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// The frame layer of RFC 6455 (section 5), as a server speaks it: frames
// read from a client are masked, frames written to it are not. wsroom never
// negotiates an extension, so every reserved bit must be zero.

type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

const (
	finBit  = 0x80
	rsvBits = 0x70
	maskBit = 0x80

	// maxControlPayload is the largest payload of a control frame.
	maxControlPayload = 125
	// maxCloseReason is the longest reason a close frame can carry.
	maxCloseReason = maxControlPayload - 2
	// maxHeader is the longest frame header: 2 bytes, an 8-byte length
	// and a 4-byte mask key.
	maxHeader = 14
)

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	rsv    byte // the three reserved bits, in place
	opcode opcode
	masked bool
	length int64
	key    uint32 // the mask key, as read (first byte lowest)
}

// headerLen returns the length of the header that starts with b0 and b1
// (the first two bytes).
func headerLen(b1 byte) int {
	n := 2
	switch b1 &^ maskBit {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// parseHeader parses a whole header, as sized by headerLen. It reports
// false for a 64-bit length with the most significant bit set, which
// RFC 6455 forbids.
func parseHeader(b []byte) (frameHeader, bool) {
	h := frameHeader{
		fin:    b[0]&finBit != 0,
		rsv:    b[0] & rsvBits,
		opcode: opcode(b[0] & 0x0F),
		masked: b[1]&maskBit != 0,
	}
	rest := b[2:]
	switch n := b[1] &^ maskBit; n {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		l := binary.BigEndian.Uint64(rest)
		if l>>63 != 0 {
			return h, false
		}
		h.length = int64(l)
		rest = rest[8:]
	default:
		h.length = int64(n)
	}
	if h.masked {
		h.key = binary.LittleEndian.Uint32(rest)
	}
	return h, true
}

// putHeader writes the header of an unmasked frame into h and returns its
// length.
func putHeader(h *[10]byte, fin bool, op opcode, length int) int {
	h[0] = byte(op)
	if fin {
		h[0] |= finBit
	}
	switch {
	case length < 126:
		h[1] = byte(length)
		return 2
	case length <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(length))
		return 4
	}
	h[1] = 127
	binary.BigEndian.PutUint64(h[2:], uint64(length))
	return 10
}

// unmask XORs b with the mask key, starting pos bytes into the frame's
// payload, and returns the position after b.
func unmask(b []byte, key uint32, pos int) int {
	// Rotate the key so that its lowest byte applies to b[0].
	k := bits.RotateLeft32(key, -8*(pos&3))
	k64 := uint64(k)<<32 | uint64(k)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k)
		k = bits.RotateLeft32(k, -8)
	}
	return pos + len(b)
}

// validCloseCode reports whether code may appear in a close frame
// (RFC 6455 section 7.4 and the IANA registry): 1000-1003, 1007-1014 and
// the ranges 3000-4999 for libraries and applications. 1004 is reserved;
// 1005, 1006 and 1015 only describe a close locally.
func validCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// closePayload is what a close frame carries: a code and a reason, or
// nothing (code 1005, No Status Received).
type closePayload struct {
	code   StatusCode
	reason string
}

const statusNoStatus StatusCode = 1005

// parseClosePayload parses a peer's close frame. It reports the close code
// wsroom fails the connection with when the payload is invalid: 1002 for a
// bad length or code, 1007 for a reason that is not UTF-8.
func parseClosePayload(p []byte) (closePayload, StatusCode, string) {
	switch {
	case len(p) == 0:
		return closePayload{code: statusNoStatus}, 0, ""
	case len(p) == 1:
		return closePayload{}, 1002, "close frame with a 1-byte payload"
	}
	cp := closePayload{code: StatusCode(binary.BigEndian.Uint16(p))}
	if !validCloseCode(cp.code) {
		return closePayload{}, 1002, "close frame with an invalid code"
	}
	if !utf8.Valid(p[2:]) {
		return closePayload{}, 1007, "close reason is not UTF-8"
	}
	cp.reason = string(p[2:])
	return cp, 0, ""
}

// appendClosePayload appends the payload of a close frame for cp.
func appendClosePayload(dst []byte, cp closePayload) []byte {
	if cp.code == statusNoStatus {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(cp.code))
	return append(dst, cp.reason...)
}

// checkStatus validates a close status a caller asked to send.
func checkStatus(code StatusCode, reason string) bool {
	return validCloseCode(code) && len(reason) <= maxCloseReason && utf8.ValidString(reason)
}
