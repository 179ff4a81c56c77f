package wsroom

import "unicode/utf8"

// utf8Checker validates a text message as its bytes arrive, fragment by
// fragment and read by read, so that a peer sending invalid UTF-8 is failed
// at the first byte that can no longer start valid text, not after the
// whole message (RFC 6455 section 8.1). It is one pass over the bytes: the
// bulk goes through utf8.Valid, and only a rune cut at the end of a read is
// carried over.
type utf8Checker struct {
	pending [utf8.UTFMax]byte // the start of a rune cut at the end of a read
	n       int
}

// next validates p, the bytes that follow those already seen. It reports
// false as soon as the text cannot be valid UTF-8 whatever follows.
func (u *utf8Checker) next(p []byte) bool {
	if u.n > 0 {
		need := runeLen(u.pending[0])
		for u.n < need && len(p) > 0 {
			u.pending[u.n] = p[0]
			u.n++
			p = p[1:]
		}
		if u.n < need {
			return validPrefix(u.pending[:u.n])
		}
		if !utf8.Valid(u.pending[:need]) {
			return false
		}
		u.n = 0
	}
	cut := cutPoint(p)
	if !utf8.Valid(p[:cut]) {
		return false
	}
	if tail := p[cut:]; len(tail) > 0 {
		if !validPrefix(tail) {
			return false
		}
		u.n = copy(u.pending[:], tail)
	}
	return true
}

// complete reports whether the text seen so far ends on a rune boundary:
// at the end of a message, a cut rune makes the message invalid.
func (u *utf8Checker) complete() bool { return u.n == 0 }

// cutPoint returns where an unfinished multi-byte rune starts at the end of
// p, or len(p) if p ends on a rune boundary (or with bytes utf8.Valid will
// reject anyway).
func cutPoint(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(p[i]) {
			if len(p)-i < runeLen(p[i]) {
				return i
			}
			return len(p)
		}
	}
	return len(p)
}

// runeLen returns the length of the rune a lead byte announces, or 1 for
// an ASCII byte or a byte that cannot lead a rune.
func runeLen(b byte) int {
	switch {
	case b >= 0xC2 && b <= 0xDF:
		return 2
	case b >= 0xE0 && b <= 0xEF:
		return 3
	case b >= 0xF0 && b <= 0xF4:
		return 4
	}
	return 1
}

// validPrefix reports whether p, shorter than the rune its first byte
// announces, can still become a valid rune: no overlong form, no surrogate,
// nothing above U+10FFFF.
func validPrefix(p []byte) bool {
	if len(p) == 0 || len(p) >= runeLen(p[0]) {
		return false
	}
	if len(p) >= 2 {
		lo, hi := byte(0x80), byte(0xBF)
		switch p[0] {
		case 0xE0:
			lo = 0xA0
		case 0xED:
			hi = 0x9F
		case 0xF0:
			lo = 0x90
		case 0xF4:
			hi = 0x8F
		}
		if p[1] < lo || p[1] > hi {
			return false
		}
	}
	if len(p) == 3 && (p[2] < 0x80 || p[2] > 0xBF) {
		return false
	}
	return true
}
