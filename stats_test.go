package wsroom

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/internal/rawws"
)

func TestStatsCountTrafficClosesAndTheLongestQueue(t *testing.T) {
	h := startHarness(t, harnessConfig{smallSendBuffers: true, onMessage: func(h *harness, c *Conn, msg Message) {
		_ = h.m.SendPersonal(context.Background(), c, msg)
	}})
	cl, _ := h.dial("")
	cl.start()
	for _, text := range []string{"one", "two", "three"} {
		cl.send(text)
	}
	cl.waitTexts(3)
	s := h.m.Stats()
	if s.Received != 3 {
		t.Fatalf("Received = %d, want 3", s.Received)
	}
	// Each masked client frame of a short text is 6 bytes of header; each
	// server frame 2. A writer counts its bytes once its write returns,
	// which may be after the client has read them.
	if in := s.BytesIn; in < 3*6+11 {
		t.Fatalf("BytesIn %d: less than the frames", in)
	}
	eventually(t, "BytesOut counts the echoes' frames", func() bool { return h.m.Stats().BytesOut >= 3*2+11 })

	// A stalled peer's queue is the longest.
	_, stalled := h.dialStalling("")
	queued := Text(string(make([]byte, 16<<10)))
	for range 100 {
		if err := h.m.SendPersonal(context.Background(), stalled, queued); err != nil {
			t.Fatal(err)
		}
	}
	// Kernel buffers take a few hundred kilobytes; the queue the rest.
	if s := h.m.Stats(); s.MaxQueueLength < 50 || s.MaxQueueBytes < 50*queued.Len() {
		t.Fatalf("MaxQueueLength %d, MaxQueueBytes %d, want the stalled queue", s.MaxQueueLength, s.MaxQueueBytes)
	}

	// Closes are counted by the code of their handshake, 1006 for none.
	if err := cl.wc.CloseWith(4001, "bye"); err != nil {
		t.Fatal(err)
	}
	raw, rawConn := h.dialRawWS("")
	_ = raw.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpText, Payload: []byte{0xff}})
	waitDone(t, rawConn)
	lost, lostConn := h.dialRawWS("")
	_ = lost.Close()
	waitDone(t, lostConn)
	eventually(t, "every close is counted", func() bool {
		c := h.m.Stats().Closes
		return c[4001] == 1 && c[websocket.StatusInvalidFramePayloadData] == 1 && c[websocket.StatusAbnormalClosure] == 1
	})
}

func TestObserverIsToldOfEachPublish(t *testing.T) {
	var published, batches atomic.Int64
	broker := newGateBroker()
	h := startHarness(t, harnessConfig{opts: []Option{WithBroker(broker), WithObserver(Observer{
		Published: func(n int, took time.Duration, err error) {
			if err == nil && took >= 0 {
				published.Add(int64(n))
				batches.Add(1)
			}
		},
	})}})
	for range 10 {
		if err := h.m.Broadcast(ctxTimeout(t), "r", Text("x")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the observer saw every broadcast published", func() bool { return published.Load() == 10 })
	if s := h.m.Stats(); int64(s.BrokerBatches) != batches.Load() {
		t.Fatalf("the observer saw %d publishes, Stats counts %d", batches.Load(), s.BrokerBatches)
	}
}
