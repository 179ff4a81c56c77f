package wsroom

import (
	"context"
	"errors"
	"github.com/coder/websocket"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"nil option", nil},
		{"zero queue messages", WithQueueLimit(0, 1024)},
		{"zero queue bytes", WithQueueLimit(16, 0)},
		{"unknown policy", WithSlowConsumerPolicy(SlowConsumerPolicy(9))},
		{"negative policy", WithSlowConsumerPolicy(SlowConsumerPolicy(-1))},
		{"zero read limit", WithReadLimit(0)},
		{"zero write timeout", WithWriteTimeout(0)},
		{"negative ping interval", WithPing(-time.Second, time.Second)},
		{"zero ping timeout", WithPing(time.Second, 0)},
		{"nil authenticator", WithAuthenticator(nil)},
		{"unknown auth failure mode", WithAuthFailure(AuthFailureMode(7))},
		{"empty origin pattern", WithOriginPatterns("ok.example", "")},
		{"nil logger", WithLogger(nil)},
		{"nil broker", WithBroker(nil)},
		{"empty node ID", WithNodeID("")},
		{"empty coalescing separator", WithCoalescing("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.opt)
			if !errors.Is(err, ErrInvalidOption) || m != nil {
				t.Fatalf("New: %v, %v; want nil and ErrInvalidOption", m, err)
			}
		})
	}
	if _, err := New(WithPing(0, time.Second), WithNodeID("n1")); err != nil {
		t.Fatalf("pings off: %v", err)
	}
}

func TestNoGoroutineLeaksAfterManyConnectDisconnectCycles(t *testing.T) {
	const cycles = 1000
	h := newHarness(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for i := range cycles {
		cl := h.dialOnly("room=r")
		c := h.nextConn()
		switch i % 3 {
		case 0: // the client closes
			cl.start()
			_ = cl.wc.CloseWith(StatusShutdown, "")
		case 1: // the server disconnects
			h.m.Disconnect(c, websocket.StatusNormalClosure, "")
			cl.start()
		default: // the client vanishes
			cl.wc.Abort()
		}
		cl.start()
		cl.waitEnd()
		waitDone(t, c)
		<-h.readErrs
	}
	if s := h.m.Stats(); s.Connections != 0 || s.Rooms != 0 {
		t.Fatalf("stats after %d cycles: %+v", cycles, s)
	}
	// Broadcasting to nobody still works.
	if err := h.m.Broadcast(context.Background(), "r", Text("x")); err != nil {
		t.Fatal(err)
	}
}
