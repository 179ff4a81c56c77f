package redisbroker

import "strings"

// channelName returns the Redis channel of room: prefix followed by the
// room's name with every byte outside [A-Za-z0-9] and "-._~:" written as %XX
// (upper-case hex). The mapping is one-to-one, and the result is printable
// ASCII with no spaces and no glob characters, so `redis-cli PSUBSCRIBE
// 'wsroom:*'` shows every room unambiguously.
func channelName(prefix, room string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(prefix) + len(room))
	b.WriteString(prefix)
	for i := 0; i < len(room); i++ {
		c := room[i]
		if isPlain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isPlain(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:", c) >= 0
}
