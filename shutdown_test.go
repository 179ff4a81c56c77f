package wsroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestShutdownFlushesQueuedMessagesThenCloses1001(t *testing.T) {
	h := startHarness(t, harnessConfig{smallSendBuffers: true})
	cl, c := h.dialStalling("room=r")
	other, _ := h.dial("room=r")
	other.start()

	// The client does not read yet, so most messages wait in the queue.
	var want []string
	for i := range 40 {
		text := fmt.Sprintf("%d:%s", i, strings.Repeat("x", 32<<10))
		if err := h.m.Broadcast(context.Background(), "r", Text(text)); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	if queueLen(c) == 0 {
		t.Fatal("nothing was left queued; the test proves nothing")
	}

	shutdown := make(chan error, 1)
	go func() { shutdown <- h.m.Shutdown(ctxTimeout(t)) }()
	cl.start()
	wantClose(t, cl.waitEnd(), StatusShutdown, "server shutdown")
	if got := cl.texts(); !slices.Equal(got, want) {
		t.Fatalf("client got %d messages before the close, want all %d in order", len(got), len(want))
	}
	wantClose(t, other.waitEnd(), StatusShutdown, "server shutdown")
	if got := other.texts(); !slices.Equal(got, want) {
		t.Fatalf("other client got %d messages before the close, want all %d", len(got), len(want))
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return")
	}
	if s := h.m.Stats(); s.Connections != 0 || s.Rooms != 0 {
		t.Fatalf("stats after Shutdown %+v", s)
	}
}

func TestConnectAfterShutdownIs503(t *testing.T) {
	h := newHarness(t)
	if err := h.m.Shutdown(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.Dial(ctxTimeout(t), h.wsURL(""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Shutdown: %v, want HTTP 503", err)
	}
	if err := <-h.connectErrs; !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Shutdown: %v, want ErrClosed", err)
	}
	if err := h.m.Shutdown(ctxTimeout(t)); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestShutdownHonoursDeadlineAgainstUnresponsivePeer(t *testing.T) {
	h := newHarness(t)
	_, c := h.dialRaw("room=r") // never reads, so never answers the close
	responsive, _ := h.dial("room=r")
	responsive.start()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- h.m.Shutdown(ctx) }()
	select {
	case err := <-returned:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v, want the context's deadline error", err)
		}
	case <-time.After(4 * time.Second):
		// coder/websocket alone would wait 5 s for the close handshake.
		t.Fatal("Shutdown did not honour its deadline")
	}
	wantClose(t, responsive.waitEnd(), StatusShutdown, "server shutdown")
	waitDone(t, c)
}
