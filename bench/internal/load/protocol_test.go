package load

import (
	"math"
	"strings"
	"testing"
)

func TestPayloadRoundTripsWithPadding(t *testing.T) {
	for _, size := range []int{0, 10, 1024} {
		b := appendPayload(nil, 7, 12345, 1795665208069213666, size)
		if len(b) < size {
			t.Fatalf("size %d: payload has %d bytes", size, len(b))
		}
		if strings.ContainsRune(string(b), '\n') {
			t.Fatalf("payload contains a newline")
		}
		p, ok := parsePayload(b)
		if !ok || p != (payload{sender: 7, seq: 12345, unixNano: 1795665208069213666}) {
			t.Fatalf("size %d: parsed %+v %v", size, p, ok)
		}
	}
}

func TestParseUintRejectsOverflowAndJunk(t *testing.T) {
	for _, s := range []string{"", "-1", "12a", "9223372036854775808"} {
		if _, ok := parseUint([]byte(s)); ok {
			t.Errorf("parseUint(%q) succeeded", s)
		}
	}
	if n, ok := parseUint([]byte("9223372036854775807")); !ok || n != math.MaxInt64 {
		t.Errorf("parseUint(MaxInt64) = %d, %v", n, ok)
	}
}

func TestClassifyProtocolLines(t *testing.T) {
	tests := []struct {
		line string
		kind lineKind
		rest string
	}{
		{"c12 进入了聊天室", lineJoin, "c12"},
		{"c12 离开了聊天室", lineLeave, "c12"},
		{"c3 发送消息:m 0 1 2", lineRelay, "m 0 1 2"},
		{"服务端回复c3:你发送的信息是:m 0 1 2", lineReply, "m 0 1 2"},
		{"hello", lineOther, ""},
	}
	for _, tt := range tests {
		kind, rest := classify([]byte(tt.line))
		if kind != tt.kind || string(rest) != tt.rest {
			t.Errorf("classify(%q) = %v %q, want %v %q", tt.line, kind, rest, tt.kind, tt.rest)
		}
	}
}

func TestHistogramQuantilesWithinResolution(t *testing.T) {
	var h histogram
	for us := int64(1); us <= 100000; us++ {
		h.record(us)
	}
	for _, q := range []float64{0.5, 0.99} {
		want := q * 100000
		if got := h.quantile(q); math.Abs(got-want)/want > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v within 4%%", q, got, want)
		}
	}
	if got := h.max.Load(); got != 100000 {
		t.Errorf("max = %d", got)
	}
	for i := range len(h.counts) - 1 {
		if bucketMid(i) >= bucketMid(i+1) {
			t.Fatalf("bucket %d is not below bucket %d", i, i+1)
		}
	}
}
