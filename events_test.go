package wsroom

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/internal/rawws"
)

// eventLog records room events as "join ROOM" and "leave ROOM", and the
// reasons of the leaves, in the order the hooks ran.
type eventLog struct {
	mu      sync.Mutex
	events  []string
	reasons []error
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{}, 1)} }

func (l *eventLog) hooks() RoomEvents {
	return RoomEvents{
		OnJoin: func(room string, c *Conn) { l.add("join "+room, nil) },
		OnLeave: func(room string, c *Conn, reason error) {
			l.add("leave "+room, reason)
		},
	}
}

func (l *eventLog) add(event string, reason error) {
	l.mu.Lock()
	l.events = append(l.events, event)
	if strings.HasPrefix(event, "leave") {
		l.reasons = append(l.reasons, reason)
	}
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// wait waits for n events and returns them with the leaves' reasons.
func (l *eventLog) wait(t *testing.T, n int) ([]string, []error) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		l.mu.Lock()
		if len(l.events) >= n {
			events, reasons := append([]string(nil), l.events...), append([]error(nil), l.reasons...)
			l.mu.Unlock()
			return events, reasons
		}
		got := fmt.Sprint(l.events)
		l.mu.Unlock()
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("room events %s, want %d within %v", got, n, waitTimeout)
		}
	}
}

// TestRoomEventsComeOnceInOrderWithWhyTheConnectionLeft joins a connection
// to two rooms and ends it in each way there is; the hooks see two joins,
// then two leaves with the reason, and nothing more.
func TestRoomEventsComeOnceInOrderWithWhyTheConnectionLeft(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opts  []Option
		end   func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn)
		raw   bool // the client is a raw one that never reads
		still bool // the client never reads, so it answers no ping
		check func(reason error) bool
	}{
		{
			name: "the client closed",
			end: func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {
				if err := cl.wc.CloseWith(4001, "bye"); err != nil {
					t.Fatal(err)
				}
			},
			check: func(reason error) bool { return websocket.CloseStatus(reason) == 4001 && !errors.Is(reason, ErrClosed) },
		},
		{
			name: "Disconnect",
			end: func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {
				if err := h.m.Disconnect(c, websocket.StatusNormalClosure, "done"); err != nil {
					t.Fatal(err)
				}
			},
			check: func(reason error) bool {
				return errors.Is(reason, ErrClosed) && websocket.CloseStatus(reason) == websocket.StatusNormalClosure
			},
		},
		{
			name: "evicted as a slow consumer",
			opts: []Option{WithQueueLimit(4, 1<<20), WithCloseTimeout(300 * time.Millisecond)},
			raw:  true,
			end: func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {
				big := Text(strings.Repeat("x", 64<<10))
				for range 1000 {
					if err := h.m.SendPersonal(context.Background(), c, big); err != nil {
						return
					}
				}
				t.Fatal("never evicted")
			},
			check: func(reason error) bool {
				return errors.Is(reason, ErrClosed) && errors.Is(reason, ErrSlowConsumer) && websocket.CloseStatus(reason) == StatusSlowConsumer
			},
		},
		{
			name:  "ping timeout",
			opts:  []Option{WithPing(50*time.Millisecond, 100*time.Millisecond)},
			still: true,
			end:   func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {},
			check: func(reason error) bool {
				return errors.Is(reason, ErrClosed) && errors.Is(reason, ErrPingTimeout)
			},
		},
		{
			name: "write timeout",
			opts: []Option{WithWriteTimeout(time.Second), WithPing(0, 0)},
			raw:  true,
			end: func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {
				line := Text(strings.Repeat("w", 1024))
				for {
					select {
					case <-c.Done():
						return
					case <-time.After(time.Millisecond):
					}
					_ = h.m.SendPersonal(context.Background(), c, line)
				}
			},
			check: func(reason error) bool {
				return errors.Is(reason, ErrClosed) && errors.Is(reason, ErrWriteTimeout)
			},
		},
		{
			name: "Shutdown",
			end: func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {
				if err := h.m.Shutdown(ctxTimeout(t)); err != nil {
					t.Fatal(err)
				}
			},
			check: func(reason error) bool {
				return errors.Is(reason, ErrClosed) && errors.Is(reason, ErrShutdown) && websocket.CloseStatus(reason) == StatusShutdown
			},
		},
		{
			name: "a protocol error",
			raw:  true,
			end: func(t *testing.T, h *harness, cl *client, rc *rawws.Conn, c *Conn) {
				_ = rc.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpText, Payload: []byte{0xff}})
			},
			check: func(reason error) bool {
				return errors.Is(reason, ErrProtocol) && websocket.CloseStatus(reason) == websocket.StatusInvalidFramePayloadData
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := newEventLog()
			cfg := harnessConfig{opts: append([]Option{WithRoomEvents(log.hooks())}, tt.opts...)}
			if tt.raw {
				cfg.smallSendBuffers = true
			}
			h := startHarness(t, cfg)
			var (
				cl *client
				rc *rawws.Conn
				c  *Conn
			)
			if tt.raw {
				rc, c = h.dialRawWS("room=a&room=b")
				if err := rc.NetConn().(interface{ SetReadBuffer(int) error }).SetReadBuffer(socketBuffer); err != nil {
					t.Fatal(err)
				}
			} else {
				cl, c = h.dial("room=a&room=b")
				if !tt.still {
					cl.start()
				}
			}
			if got, _ := log.wait(t, 2); got[0] != "join a" || got[1] != "join b" {
				t.Fatalf("events %q, want the joins of a and b", got)
			}
			tt.end(t, h, cl, rc, c)
			waitDone(t, c)
			got, reasons := log.wait(t, 4)
			if want := []string{"join a", "join b", "leave a", "leave b"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("events %q, want %q", got, want)
			}
			for _, reason := range reasons {
				if !tt.check(reason) {
					t.Errorf("leave reason %v", reason)
				}
			}
			// Nothing comes after the leaves.
			_ = h.m.Shutdown(ctxTimeout(t))
			if got, _ := log.wait(t, 0); len(got) != 4 {
				t.Fatalf("events %q after the leaves", got)
			}
		})
	}
}

// TestLeaveHasNoReasonAndRejoinIsANewJoin pins Leave's event: no reason,
// and a connection that joins again gets a new join event; leaving a room
// it is not in, or joining one it is in, is no event.
func TestLeaveHasNoReasonAndRejoinIsANewJoin(t *testing.T) {
	log := newEventLog()
	h := newHarness(t, WithRoomEvents(log.hooks()))
	_, c := h.dial("room=a")
	ctx := ctxTimeout(t)
	h.m.Leave(c, "a")
	h.m.Leave(c, "a")
	if err := h.m.Join(ctx, c, "a"); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Join(ctx, c, "a"); err != nil {
		t.Fatal(err)
	}
	h.m.Leave(c, "a")
	got, reasons := log.wait(t, 4)
	if want := []string{"join a", "leave a", "join a", "leave a"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if reasons[0] != nil || reasons[1] != nil {
		t.Fatalf("Leave's reasons %v, want nil", reasons)
	}
}

// TestRoomEventHooksMayCallBackIntoTheManager has the hooks broadcast,
// list members and join and leave rooms, for the same connection too: no
// deadlock, and the events their calls cause come after them, in order.
func TestRoomEventHooksMayCallBackIntoTheManager(t *testing.T) {
	log := newEventLog()
	var h *harness
	hooks := RoomEvents{
		OnJoin: func(room string, c *Conn) {
			log.add("join "+room, nil)
			ctx := context.Background()
			_ = h.m.Broadcast(ctx, room, Text(c.ID()+" joined "+room))
			if room == "a" {
				if err := h.m.Join(ctx, c, "b"); err != nil {
					t.Errorf("Join from OnJoin: %v", err)
				}
				log.add(fmt.Sprintf("members of b: %d", len(h.m.Members("b"))), nil)
			}
		},
		OnLeave: func(room string, c *Conn, reason error) {
			log.add("leave "+room, reason)
			if room == "a" {
				h.m.Leave(c, "b")
			}
		},
	}
	h = newHarness(t, WithRoomEvents(hooks))
	cl, c := h.dial("id=ann&room=a")
	cl.start()
	if got := cl.waitTexts(2); got[0] != "ann joined a" || got[1] != "ann joined b" {
		t.Fatalf("client got %q", got)
	}
	h.m.Leave(c, "a")
	got, _ := log.wait(t, 5)
	if want := []string{"join a", "members of b: 1", "join b", "leave a", "leave b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestOnLeaveOfAnEvictionDuringABroadcastMayBroadcast evicts a member in
// the middle of a broadcast through a broker, whose delivery holds a lock
// of the manager's: OnLeave still runs outside it, and may broadcast to
// the same room.
func TestOnLeaveOfAnEvictionDuringABroadcastMayBroadcast(t *testing.T) {
	log := newEventLog()
	var h *harness
	hooks := RoomEvents{OnLeave: func(room string, c *Conn, reason error) {
		if !errors.Is(reason, ErrSlowConsumer) {
			return // the reader, when the test ends
		}
		if err := h.m.Broadcast(context.Background(), room, Text(c.ID()+" left")); err != nil {
			t.Errorf("Broadcast from OnLeave: %v", err)
		}
		log.add("leave "+room, reason)
	}}
	h = startHarness(t, harnessConfig{smallSendBuffers: true, opts: []Option{
		WithBroker(NewMemoryBroker()), WithRoomEvents(hooks), WithQueueLimit(4, 1<<20), WithCloseTimeout(300 * time.Millisecond),
	}})
	reader, _ := h.dial("room=r")
	reader.start()
	_, stalled := h.dial("id=slow&room=r")
	big := Text(strings.Repeat("x", 64<<10))
	ctx := ctxTimeout(t)
	for sent := 0; !stalled.isClosing(); sent++ {
		if sent == 1000 {
			t.Fatal("never evicted")
		}
		if err := h.m.Broadcast(ctx, "r", big); err != nil {
			t.Fatal(err)
		}
		reader.waitMessages(sent + 1) // the reader keeps up; the stalled one does not
	}
	_, reasons := log.wait(t, 1)
	if !errors.Is(reasons[0], ErrSlowConsumer) {
		t.Fatalf("leave reason %v, want ErrSlowConsumer", reasons[0])
	}
	for {
		if m := reader.waitMessages(len(reader.msgs) + 1); m[len(m)-1].data == "slow left" {
			return
		}
	}
}

// TestShutdownWaitsForTheLeaveHooksOfWhatItCloses holds an OnLeave hook
// of a connection Shutdown closes: Shutdown has not returned while the
// hook runs, and returns once it has.
func TestShutdownWaitsForTheLeaveHooksOfWhatItCloses(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	h := newHarness(t, WithRoomEvents(RoomEvents{OnLeave: func(room string, c *Conn, reason error) {
		close(entered)
		<-release
		finished.Store(true)
	}}))
	cl, _ := h.dial("room=a")
	cl.start() // it answers the close handshake
	done := make(chan error, 1)
	go func() { done <- h.m.Shutdown(ctxTimeout(t)) }()
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("no OnLeave for the connection Shutdown closed")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while an OnLeave hook was running", err)
	default:
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return once the hook had")
	}
	if !finished.Load() {
		t.Fatal("Shutdown returned before the hook finished")
	}
}
