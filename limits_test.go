package wsroom

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/internal/rawws"
)

// Process-wide bounds: connections, queued bytes, and the requests that
// are refused before any upgrade.

func TestMaxConnectionsRefusesWith503BeforeTheUpgrade(t *testing.T) {
	h := newHarness(t, WithMaxConnections(2))
	first, c1 := h.dial("")
	h.dial("")
	_, resp, err := websocket.Dial(ctxTimeout(t), h.wsURL(""), nil)
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %v, %v; want HTTP 503", resp, err)
	}
	if err := <-h.connectErrs; !errors.Is(err, ErrRefused) {
		t.Fatalf("Connect: %v, want ErrRefused", err)
	}
	if s := h.m.Stats(); s.RefusedFull != 1 || s.Connections != 2 {
		t.Fatalf("stats %+v, want one refused and two connections", s)
	}
	// A slot is free again once a connection is fully closed.
	first.start()
	if err := h.m.Disconnect(c1, websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c1)
	h.dial("")
}

func TestQueueBudgetAppliesThePolicyToTheBiggestHolders(t *testing.T) {
	const (
		budget  = 2 << 20
		msgSize = 16 << 10
		rounds  = 100
	)
	for _, policy := range []SlowConsumerPolicy{Evict, DropOldest, DropNewest} {
		t.Run(policy.String(), func(t *testing.T) {
			h := startHarness(t, harnessConfig{
				smallSendBuffers: true,
				opts: []Option{
					WithQueueBudget(budget), WithSlowConsumerPolicy(policy),
					WithPing(0, 0), WithWriteTimeout(time.Minute), WithCloseTimeout(200 * time.Millisecond),
				},
			})
			reader, readerConn := h.dial("")
			reader.start()
			// Stalled readers, each sent messages of its own: nothing
			// is shared, every byte counts.
			var stalled []*Conn
			for range 4 {
				_, c := h.dialStalling("")
				stalled = append(stalled, c)
			}
			ctx := ctxTimeout(t)
			peak := int64(0)
			for round := range rounds {
				for i, c := range stalled {
					// Each stalled reader gets more than the last, so
					// the biggest holder is always the last one.
					for range 1 + i {
						_ = h.m.SendPersonal(ctx, c, Text(strings.Repeat("s", msgSize)))
						peak = max(peak, h.m.pendingBytes())
					}
				}
				if err := h.m.SendPersonal(ctx, readerConn, Text(strings.Repeat("r", msgSize))); err != nil {
					t.Fatalf("round %d: the reader: %v", round, err)
				}
				peak = max(peak, h.m.pendingBytes())
				// The reader keeps up: it has each round's message
				// before the next round.
				reader.waitTexts(round + 1)
			}
			// A send that goes over the budget brings it back before
			// it returns: at most one message over. What the budget
			// bounds is the bytes of connections not closing: an
			// evicted connection's writer may still hold a batch it took
			// (Stats().QueuedBytes counts it) until the connection ends. Capping frees
			// nothing at once, so under DropNewest the connections
			// still taking messages may add an eighth of the budget.
			limit := int64(budget + msgSize)
			if policy == DropNewest {
				limit += budget / 8
			}
			if peak > limit {
				t.Fatalf("queued bytes peaked at %d, over the limit of %d for a budget of %d", peak, limit, budget)
			}
			s := h.m.Stats()
			if s.OverBudget == 0 {
				t.Fatalf("stats %+v: the budget was never enforced", s)
			}
			switch policy {
			case Evict:
				// The biggest holders went first: the last stalled
				// reader, which got the most, was evicted.
				waitDone(t, stalled[len(stalled)-1])
				if s.Evicted == 0 {
					t.Fatalf("nobody evicted: %+v", s)
				}
			case DropOldest:
				if s.DroppedOldest == 0 || s.Evicted != 0 {
					t.Fatalf("stats %+v, want drops and no eviction", s)
				}
			case DropNewest:
				if s.DroppedNewest == 0 || s.Evicted != 0 {
					t.Fatalf("stats %+v, want drops and no eviction", s)
				}
			}
			// The reader that keeps up lost nothing.
			if got := reader.waitTexts(rounds); len(got) != rounds {
				t.Fatalf("reader got %d of %d", len(got), rounds)
			}
		})
	}
}

func TestQueueBudgetCountsASharedBroadcastOnce(t *testing.T) {
	const members = 50
	h := newHarness(t, WithQueueBudget(1<<20), WithPing(0, 0))
	var stalled []*Conn
	for range members {
		_, c := h.dialStalling("room=r")
		stalled = append(stalled, c)
	}
	// 50 members × 512 KiB is 25 MiB of queue entries, but one payload.
	if err := h.m.Broadcast(ctxTimeout(t), "r", Text(strings.Repeat("b", 512<<10))); err != nil {
		t.Fatal(err)
	}
	s := h.m.Stats()
	if s.QueuedBytes > 512<<10 || s.OverBudget != 0 || s.Evicted != 0 {
		t.Fatalf("stats %+v: a shared payload counted more than once", s)
	}
	for _, c := range stalled {
		if c.isClosing() {
			t.Fatal("a member was evicted for a broadcast within the budget")
		}
	}
}

func TestBroadcastAllBlocksNeitherConnectNorStatsNorRooms(t *testing.T) {
	h := newHarness(t)
	_, held := h.dial("")
	other, _ := h.dial("room=r")
	other.start()
	// Hold one connection's lock: a BroadcastAll waits on it, as it would
	// behind a slow lock holder.
	held.mu.Lock()
	done := make(chan error, 1)
	go func() { done <- h.m.BroadcastAll(context.Background(), Text("all")) }()
	// Wait until BroadcastAll has taken its snapshot and is queuing.
	eventually(t, "BroadcastAll is under way", func() bool {
		if !h.m.allMu.TryLock() {
			return true
		}
		h.m.allMu.Unlock()
		return false
	})
	_ = h.m.Stats()
	late, _ := h.dial("room=r")
	late.start()
	if err := h.m.Broadcast(ctxTimeout(t), "r", Text("room")); err != nil {
		t.Fatal(err)
	}
	if got := late.waitTexts(1); got[0] != "room" {
		t.Fatalf("got %q", got)
	}
	held.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAllowedHostsRefuseADNSRebindingPage(t *testing.T) {
	h := newHarness(t, WithAllowedHosts("localhost", "127.0.0.1"))
	addr := h.srv.Listener.Addr().String()
	// A page on evil.example whose name now resolves to this server: its
	// Origin and Host agree, so only the Host check stops it.
	rc, resp, err := rawws.Dial(addr, "/", http.Header{"Host": {"evil.example"}, "Origin": {"http://evil.example"}})
	if rc != nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rebinding page: %v, %v; want HTTP 403", resp, err)
	}
	if err := <-h.connectErrs; !errors.Is(err, ErrRefused) {
		t.Fatalf("Connect: %v, want ErrRefused", err)
	}
	rc, resp, err = rawws.Dial(addr, "/", http.Header{"Host": {addr}, "Origin": {"http://" + addr}})
	if err != nil {
		t.Fatalf("same-origin page on an allowed host: %v, %v", resp, err)
	}
	_ = rc.Close()
	if s := h.m.Stats(); s.RefusedHost != 1 {
		t.Fatalf("RefusedHost = %d, want 1", s.RefusedHost)
	}
}

func TestWriterBufferIsSizedToItsBatch(t *testing.T) {
	for _, tt := range []struct{ need, want int }{
		{100, 512}, {512, 512}, {513, 4 << 10}, {10 << 10, 16 << 10}, {gatherLimit, gatherLimit}, {1 << 20, gatherLimit},
	} {
		b := getBuffer(tt.need)
		if cap(*b) != tt.want {
			t.Errorf("buffer for %d bytes: %d, want %d", tt.need, cap(*b), tt.want)
		}
		putBuffer(b)
	}
}

func TestQueueBudgetEvictsNoMoreThanItNeeds(t *testing.T) {
	const (
		budget  = 1 << 20
		msgSize = 512 << 10
	)
	h := startHarness(t, harnessConfig{
		smallSendBuffers: true,
		opts:             []Option{WithQueueBudget(budget), WithPing(0, 0), WithWriteTimeout(time.Minute)},
	})
	var stalled []*Conn
	for range 4 {
		_, c := h.dialStalling("")
		stalled = append(stalled, c)
	}
	ctx := ctxTimeout(t)
	for _, c := range stalled {
		// Each message is taken by its connection's writer, which
		// blocks on the stalled peer in the middle of it: evicting the
		// connection frees it only once the connection has ended.
		_ = h.m.SendPersonal(ctx, c, Text(strings.Repeat("m", msgSize)))
	}
	// The third message took the total to 1.5 MiB: two evictions bring
	// it under seven eighths of the budget once those connections end,
	// and the fourth fits. Counting the evicted writers' messages as
	// still there would have evicted everyone.
	if s := h.m.Stats(); s.Evicted != 2 {
		t.Fatalf("Evicted = %d, want 2 (stats %+v)", s.Evicted, s)
	}
	if s := h.m.Stats(); s.Connections != 2 {
		t.Fatalf("%d connections left, want 2", s.Connections)
	}
}
