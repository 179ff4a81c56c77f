package wsroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// hookLog records the calls of Hooks, in order.
type hookLog struct {
	mu     sync.Mutex
	events []string
	closed chan error
}

func (l *hookLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *hookLog) hooks(h *harness, rooms ...string) Hooks {
	return Hooks{
		OnOpen: func(c *Conn) {
			l.add("open")
			for _, r := range rooms {
				if err := h.m.Join(context.Background(), c, r); err != nil {
					h.t.Errorf("Join: %v", err)
				}
			}
		},
		OnMessage: func(c *Conn, msg Message) {
			l.add("msg:" + msg.Text())
			// Hooks may call back into the manager.
			if err := h.m.SendPersonal(context.Background(), c, msg); err != nil {
				h.t.Errorf("SendPersonal: %v", err)
			}
		},
		OnClose: func(c *Conn, err error) {
			l.add("close")
			l.closed <- err
		},
	}
}

func TestStartRunsHooksInOrder(t *testing.T) {
	const n = 20
	log := &hookLog{closed: make(chan error, 2)}
	h := startHarness(t, harnessConfig{handler: func(h *harness, w http.ResponseWriter, r *http.Request) {
		c, err := h.m.Start(w, r, nil, log.hooks(h, "r"))
		if err != nil {
			h.connectErrs <- err
			return
		}
		h.conns <- c
	}})
	cl, _ := h.dial("")
	cl.start()
	var want []string
	for i := range n {
		cl.send(fmt.Sprint(i))
		want = append(want, fmt.Sprint(i))
	}
	if got := cl.waitTexts(n); !slices.Equal(got, want) {
		t.Fatalf("echoes %v", got)
	}
	if err := cl.wc.CloseWith(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if err := <-log.closed; err != nil {
		t.Fatalf("OnClose got %v for a normal close, want nil", err)
	}
	// Shutdown waits for the Start loops, so every hook has run by now.
	if err := h.m.Shutdown(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	wantEvents := []string{"open"}
	for _, m := range want {
		wantEvents = append(wantEvents, "msg:"+m)
	}
	wantEvents = append(wantEvents, "close")
	if !slices.Equal(log.events, wantEvents) {
		t.Fatalf("hooks ran as %v, want %v", log.events, wantEvents)
	}
	if len(h.m.Members("r")) != 0 {
		t.Fatal("closed connection still in its room")
	}
}

func TestStartReportsAFailedConnectionToOnClose(t *testing.T) {
	log := &hookLog{closed: make(chan error, 2)}
	h := startHarness(t, harnessConfig{
		opts: []Option{WithReadLimit(16)},
		handler: func(h *harness, w http.ResponseWriter, r *http.Request) {
			if _, err := h.m.Start(w, r, nil, log.hooks(h)); err != nil {
				h.connectErrs <- err
			}
		},
	})
	cl := h.dialOnly("")
	cl.start()
	cl.send("this message is over the limit")
	err := <-log.closed
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrClosed) || websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("OnClose got %v for a message over the read limit, want ErrProtocol, ErrClosed and status 1009", err)
	}
	wantClose(t, cl.waitEnd(), websocket.StatusMessageTooBig, "")
}

func TestOnCloseRunsAfterTheConnectionLeftItsRooms(t *testing.T) {
	const conns = 50
	stillMember := make(chan string, conns)
	closed := make(chan struct{}, conns)
	h := startHarness(t, harnessConfig{
		opts: []Option{WithPing(20*time.Millisecond, 20*time.Millisecond)},
		handler: func(h *harness, w http.ResponseWriter, r *http.Request) {
			c, err := h.m.Start(w, r, nil, Hooks{
				OnOpen: func(c *Conn) {
					if err := h.m.Join(context.Background(), c, "r"); err != nil {
						t.Errorf("Join: %v", err)
					}
				},
				OnClose: func(c *Conn, err error) {
					if slices.Contains(h.m.Members("r"), c) || slices.Contains(c.Rooms(), "r") {
						stillMember <- c.ID()
					}
					closed <- struct{}{}
				},
			})
			if err != nil {
				h.connectErrs <- err
				return
			}
			h.conns <- c
		},
	})
	// Raw clients that never answer a ping: each is cut by the ping
	// timer, on a goroutine of its own, while its reader fails.
	for range conns {
		h.dialRawWS("")
	}
	for range conns {
		select {
		case <-closed:
		case <-time.After(waitTimeout):
			t.Fatal("not every connection was closed")
		}
	}
	close(stillMember)
	for id := range stillMember {
		t.Errorf("OnClose of %s ran while it was still in its room", id)
	}
}
