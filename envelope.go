package wsroom

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The envelope: a room broadcast as it travels through a [Broker]. Its wire
// form is compact:
//
//	byte     version (2)
//	byte     flags: bit 0 set for a binary message
//	uvarint  length of the origin node's ID, then the ID
//	uvarint  length of the room's name, then the name
//	         the payload, to the end
//
// Version 1 also carried the sending connection's ID, which no node read.
// A node drops an envelope of another version, counts it in
// Stats.BrokerMalformed and logs it as an error: processes of two wsroom
// versions that do not speak one envelope share a broker and do not hear
// each other, which must not go unnoticed.

// errBadEnvelope reports a broker payload that is not a wsroom envelope;
// errEnvelopeVersion one of another envelope version.
var (
	errBadEnvelope     = errors.New("wsroom: malformed broker envelope")
	errEnvelopeVersion = errors.New("wsroom: broker envelope of another version")
)

const envelopeVersion = 2

// envelope is a room broadcast as it travels through a [Broker].
type envelope struct {
	Node    string  // the publishing node's ID
	Room    string  // the room the broadcast is for
	Message Message // what was broadcast
}

// appendEnvelope appends e's wire form to dst.
func appendEnvelope(dst []byte, e envelope) []byte {
	var flags byte
	if e.Message.binary() {
		flags |= 1
	}
	dst = append(dst, envelopeVersion, flags)
	for _, s := range [...]string{e.Node, e.Room} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, e.Message.Bytes()...)
}

// parseEnvelope parses the wire form written by appendEnvelope. The
// message's payload is a copy, so b may be reused. A text message that is
// not UTF-8 is refused: wsroom never writes one to a peer.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) > 0 && b[0] != envelopeVersion {
		return envelope{}, fmt.Errorf("%w: version %d, this node speaks %d: processes of different wsroom versions share the broker", errEnvelopeVersion, b[0], envelopeVersion)
	}
	if len(b) < 2 || b[1]&^1 != 0 {
		return envelope{}, fmt.Errorf("%w: bad header", errBadEnvelope)
	}
	var e envelope
	isBinary := b[1]&1 != 0
	b = b[2:]
	for _, s := range [...]*string{&e.Node, &e.Room} {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return envelope{}, fmt.Errorf("%w: bad length", errBadEnvelope)
		}
		*s = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	if !isBinary && !utf8.Valid(b) {
		return envelope{}, fmt.Errorf("%w: text is not UTF-8", errBadEnvelope)
	}
	e.Message = received(isBinary, append([]byte{}, b...))
	return e, nil
}
