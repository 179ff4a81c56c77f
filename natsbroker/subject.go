package natsbroker

import (
	"encoding/base64"
	"strings"
)

// roomToken encodes a room name as one subject token. Unpadded base64url
// is injective and uses only A-Z a-z 0-9 - _, none of which NATS treats
// specially.
func roomToken(room string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(room))
}

func validPrefix(prefix string) error {
	if prefix == "" {
		return invalid("empty prefix")
	}
	for _, token := range strings.Split(prefix, ".") {
		if token == "" {
			return invalid("prefix %q has an empty token", prefix)
		}
		if strings.ContainsAny(token, "*> \t\r\n") {
			return invalid("prefix %q holds a wildcard or white space", prefix)
		}
	}
	return nil
}
