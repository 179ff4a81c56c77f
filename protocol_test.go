package wsroom

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/internal/rawws"
)

// The protocol edge: what a peer may send, what wsroom writes, and how a
// connection ends. The conformance suite (conformance_test.go) replays
// Autobahn's cases; these tests pin what a user of the API sees.

// promptly bounds what must happen at once: well under the 5 s a close
// handshake that waits for an absent peer would take.
const promptly = 1500 * time.Millisecond

// recorder runs a Start server whose hooks record what they see and echo
// every message back.
type recorder struct {
	*harness
	mu       sync.Mutex
	messages []string
	closeErr chan error
}

func startRecorder(t *testing.T, onMessage func(r *recorder, c *Conn, msg Message), opts ...Option) *recorder {
	rec := &recorder{closeErr: make(chan error, 16)}
	rec.harness = startHarness(t, harnessConfig{opts: opts, handler: func(h *harness, w http.ResponseWriter, r *http.Request) {
		c, err := h.m.Start(w, r, &ConnectOptions{ID: r.URL.Query().Get("id")}, Hooks{
			OnOpen: func(c *Conn) {
				for _, room := range r.URL.Query()["room"] {
					if err := h.m.Join(context.Background(), c, room); err != nil {
						t.Errorf("Join: %v", err)
					}
				}
			},
			OnMessage: func(c *Conn, msg Message) {
				rec.mu.Lock()
				rec.messages = append(rec.messages, msg.Text())
				rec.mu.Unlock()
				onMessage(rec, c, msg)
			},
			OnClose: func(c *Conn, err error) { rec.closeErr <- err },
		})
		if err != nil {
			h.connectErrs <- err
			return
		}
		h.conns <- c
	}})
	return rec
}

func echo(r *recorder, c *Conn, msg Message) {
	if err := r.m.SendPersonal(context.Background(), c, msg); err != nil {
		r.t.Errorf("SendPersonal: %v", err)
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.messages)
}

// dialRawWS opens a raw client to the harness and returns it with its
// server side.
func (h *harness) dialRawWS(query string) (*rawws.Conn, *Conn) {
	h.t.Helper()
	path := "/"
	if query != "" {
		path += "?" + query
	}
	rc, _, err := rawws.Dial(h.srv.Listener.Addr().String(), path, nil)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { _ = rc.Close() })
	return rc, h.nextConn()
}

func text(s string) rawws.Frame {
	return rawws.Frame{Fin: true, Opcode: rawws.OpText, Payload: []byte(s)}
}

// expectText reads the next frame and checks it is the text want.
func expectText(t *testing.T, rc *rawws.Conn, want string) {
	t.Helper()
	f, err := rc.ReadFrame(waitTimeout)
	if err != nil {
		t.Fatalf("waiting for %q: %v", want, err)
	}
	if f.Opcode != rawws.OpText || !f.Fin || string(f.Payload) != want {
		t.Fatalf("got %v, want the text %q", f, want)
	}
}

// expectClose reads the next frame, checks it is a close frame with code,
// and checks that the server then closes the TCP connection within
// promptly, without waiting for the client's close frame.
func expectClose(t *testing.T, rc *rawws.Conn, code int) {
	t.Helper()
	f, err := rc.ReadFrame(waitTimeout)
	if err != nil {
		t.Fatalf("waiting for close %d: %v", code, err)
	}
	got, reason, perr := rawws.ParseClose(f.Payload)
	if f.Opcode != rawws.OpClose || perr != nil || got != code {
		t.Fatalf("got %v (code %d %q), want close %d", f, got, reason, code)
	}
	if frames, err := rc.ExpectEOF(promptly); err != nil || len(frames) > 0 {
		t.Fatalf("after the close frame: %v, frames %v; want the TCP connection closed within %v", err, frames, promptly)
	}
}

func TestInvalidUTF8TextCloses1007AndIsNeverDelivered(t *testing.T) {
	rec := startRecorder(t, echo)
	rc, _ := rec.dialRawWS("")
	for _, f := range []rawws.Frame{text("before"), text("bad \xff byte"), text("after")} {
		if err := rc.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	expectText(t, rc, "before")
	expectClose(t, rc, 1007)
	err := <-rec.closeErr
	if !errors.Is(err, ErrProtocol) || websocket.CloseStatus(err) != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("OnClose got %v, want ErrProtocol with status 1007", err)
	}
	if got := rec.seen(); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("OnMessage saw %q, want only the valid message before the bad one", got)
	}
	if s := rec.m.Stats(); s.ProtocolErrors != 1 {
		t.Fatalf("ProtocolErrors = %d, want 1", s.ProtocolErrors)
	}
}

func TestFragmentedTextIsJudgedAsAWholeAndFailsAtTheFirstBadFragment(t *testing.T) {
	rec := startRecorder(t, echo)
	rc, _ := rec.dialRawWS("")
	// "é" is C3 A9: split across two fragments it is still valid text.
	for _, f := range []rawws.Frame{
		{Opcode: rawws.OpText, Payload: []byte("caf\xc3")},
		{Fin: true, Opcode: rawws.OpContinuation, Payload: []byte("\xa9")},
	} {
		if err := rc.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	expectText(t, rc, "café")

	// F4 90 can start no valid rune (above U+10FFFF): the close comes
	// before the message's last fragment is even sent.
	for _, f := range []rawws.Frame{
		{Opcode: rawws.OpText, Payload: []byte("ok so far")},
		{Opcode: rawws.OpContinuation, Payload: []byte("\xf4\x90")},
	} {
		if err := rc.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	expectClose(t, rc, 1007)
	if got := rec.seen(); !slices.Equal(got, []string{"café"}) {
		t.Fatalf("OnMessage saw %q", got)
	}
}

func TestSendingInvalidUTF8TextIsRefusedAndCounted(t *testing.T) {
	h := newHarness(t)
	cl, c := h.dial("room=r")
	cl.start()
	ctx := ctxTimeout(t)
	bad := Text("not \xff UTF-8")
	for name, err := range map[string]error{
		"SendPersonal": h.m.SendPersonal(ctx, c, bad),
		"Broadcast":    h.m.Broadcast(ctx, "r", bad),
		"BroadcastAll": h.m.BroadcastAll(ctx, bad),
	} {
		if !errors.Is(err, ErrInvalidUTF8) {
			t.Errorf("%s: %v, want ErrInvalidUTF8", name, err)
		}
	}
	if err := h.m.SendPersonal(ctx, c, Text("marker")); err != nil {
		t.Fatal(err)
	}
	if got := cl.waitTexts(1); got[0] != "marker" {
		t.Fatalf("first message %q, want the marker: nothing invalid may be written", got[0])
	}
	if s := h.m.Stats(); s.InvalidUTF8 != 3 {
		t.Fatalf("InvalidUTF8 = %d, want 3", s.InvalidUTF8)
	}
	// Binary messages carry any bytes.
	if err := h.m.SendPersonal(ctx, c, Binary([]byte{0xff})); err != nil {
		t.Fatalf("binary: %v", err)
	}
}

func TestConnIDIsAtMost255BytesOfUTF8(t *testing.T) {
	h := startHarness(t, harnessConfig{handler: func(h *harness, w http.ResponseWriter, r *http.Request) {
		c, err := h.m.Connect(w, r, &ConnectOptions{ID: r.Header.Get("X-Id")})
		if err != nil {
			h.connectErrs <- err
			return
		}
		h.conns <- c
		_, _ = c.Read(context.Background())
	}})
	for _, tt := range []struct {
		id   string
		want int
	}{
		{strings.Repeat("a", 255), http.StatusSwitchingProtocols},
		{strings.Repeat("界", 85), http.StatusSwitchingProtocols},
		{strings.Repeat("a", 256), http.StatusBadRequest},
		{"a\xffb", http.StatusBadRequest},
	} {
		rc, resp, err := rawws.Dial(h.srv.Listener.Addr().String(), "/", http.Header{"X-Id": {tt.id}})
		if resp == nil || resp.StatusCode != tt.want {
			t.Fatalf("ID of %d bytes: %v, %v; want HTTP %d", len(tt.id), resp, err, tt.want)
		}
		if rc != nil {
			if c := h.nextConn(); c.ID() != tt.id {
				t.Fatalf("ID %q", c.ID())
			}
			_ = rc.Close()
			continue
		}
		if err := <-h.connectErrs; !errors.Is(err, ErrInvalidID) {
			t.Fatalf("Connect: %v, want ErrInvalidID", err)
		}
	}
}

func TestPeerCloseIsAnsweredInTheMiddleOfABacklog(t *testing.T) {
	h := newHarness(t)
	cl, c := h.dial("")
	ctx := ctxTimeout(t)
	big := Text(strings.Repeat("x", 10<<10))
	for range 2000 { // 20 MB: seconds of backlog behind the close
		if err := h.m.SendPersonal(ctx, c, big); err != nil {
			t.Fatal(err)
		}
	}
	// coder's Close reads and drops data until the server's close frame,
	// and reports an error unless the close handshake completes.
	start := time.Now()
	if err := cl.wc.CloseWith(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("client Close after %v: %v, want a clean close handshake", time.Since(start), err)
	}
	waitDone(t, c)
	if q := queueLen(c); q != 0 {
		t.Fatalf("%d messages still queued after the close", q)
	}
}

func TestSendThenCloseAlwaysGetsTheCloseReply(t *testing.T) {
	h := startHarness(t, harnessConfig{onMessage: func(h *harness, c *Conn, msg Message) {
		_ = h.m.SendPersonal(context.Background(), c, msg)
	}})
	for i := range 200 {
		cl, c := h.dial("")
		cl.send("one message")
		if err := cl.wc.CloseWith(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatalf("exchange %d: client Close: %v, want a clean close", i, err)
		}
		waitDone(t, c)
	}
}

func TestNothingIsDeliveredOrRelayedOnceAConnectionStartsClosing(t *testing.T) {
	rec := startRecorder(t, func(r *recorder, c *Conn, msg Message) {
		if msg.Text() == "kick" {
			_ = r.m.Disconnect(c, websocket.StatusUnsupportedData, "kicked")
			return
		}
		_ = r.m.Broadcast(context.Background(), "r", msg, c)
	})
	watcher, _ := rec.dial("room=r")
	watcher.start()
	rc, kicked := rec.dialRawWS("room=r")
	frames := [][]byte{rawws.EncodeClient(text("before")), rawws.EncodeClient(text("kick"))}
	for range 200 {
		frames = append(frames, rawws.EncodeClient(text("after the kick")))
	}
	if err := rc.WriteRaw(slices.Concat(frames...)); err != nil {
		t.Fatal(err)
	}
	f, err := rc.ReadFrame(waitTimeout)
	if code, _, _ := rawws.ParseClose(f.Payload); err != nil || f.Opcode != rawws.OpClose || code != 1003 {
		t.Fatalf("got %v, %v; want close 1003", f, err)
	}
	_ = rc.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpClose, Payload: rawws.ClosePayload(1003, "")})
	waitDone(t, kicked)
	if err := rec.m.Broadcast(ctxTimeout(t), "r", Text("marker")); err != nil {
		t.Fatal(err)
	}
	if got := watcher.waitTexts(2); !slices.Equal(got, []string{"before", "marker"}) {
		t.Fatalf("the room got %q, want only what came before the kick", got)
	}
	if got := rec.seen(); !slices.Equal(got, []string{"before", "kick"}) {
		t.Fatalf("OnMessage saw %d messages (%q...), want before and kick", len(got), got[:min(3, len(got))])
	}
}

func TestEvictedFlooderIsNotReadAnyFurther(t *testing.T) {
	var mu sync.Mutex
	afterClose := 0
	rec := startRecorder(t, func(r *recorder, c *Conn, msg Message) {
		if c.isClosing() {
			mu.Lock()
			afterClose++
			mu.Unlock()
		}
		_ = r.m.SendPersonal(context.Background(), c, msg)
	}, WithQueueLimit(64, 1<<20), WithCloseTimeout(300*time.Millisecond))
	// The flooder never reads: the echoes of its own lines fill its
	// queue and it is evicted, while it keeps sending.
	// Its receive buffer is fixed, and not below the loopback MSS: a smaller
	// one makes the kernel drop the server's segments, and with them the
	// acknowledgements of the flooder's own lines, so that it stops sending.
	rc, flooder := rec.dialRawWS("")
	if err := rc.NetConn().(interface{ SetReadBuffer(int) error }).SetReadBuffer(socketBuffer); err != nil {
		t.Fatal(err)
	}
	line := rawws.EncodeClient(text(strings.Repeat("f", 1000)))
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		for {
			select {
			case <-flooder.Done():
				return
			default:
			}
			if rc.WriteRaw(line) != nil {
				return
			}
		}
	}()
	waitDone(t, flooder)
	<-flooding
	if s := rec.m.Stats(); s.Evicted != 1 {
		t.Fatalf("Evicted = %d, want the flooder (it sent %d lines; write timeouts %d; OnClose: %v)", s.Evicted, s.Received, s.WriteTimeouts, <-rec.closeErr)
	}
	if err := <-rec.closeErr; !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("OnClose got %v, want ErrSlowConsumer", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The line read just before the eviction may still be handed on;
	// nothing read after it is.
	if afterClose > 1 {
		t.Fatalf("%d of %d lines reached OnMessage after the flooder's eviction", afterClose, len(rec.seen()))
	}
}

func TestQueuedMessagesAreWrittenBeforeAProtocolErrorsClose(t *testing.T) {
	for _, tt := range []struct {
		name string
		bad  []byte
	}{
		{"reserved bit", rawws.EncodeClient(rawws.Frame{Fin: true, Rsv: rawws.Rsv1, Opcode: rawws.OpText, Payload: []byte("x")})},
		{"reserved opcode", rawws.EncodeClient(rawws.Frame{Fin: true, Opcode: 3})},
		{"unmasked frame", rawws.Encode(text("unmasked"))},
		{"fragmented ping", rawws.EncodeClient(rawws.Frame{Opcode: rawws.OpPing})},
		{"continuation without a message", rawws.EncodeClient(rawws.Frame{Fin: true, Opcode: rawws.OpContinuation})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each lingers up to a second after its close
			rec := startRecorder(t, echo)
			rc, c := rec.dialRawWS("")
			if err := rc.WriteRaw(slices.Concat(rawws.EncodeClient(text("hello")), tt.bad)); err != nil {
				t.Fatal(err)
			}
			expectText(t, rc, "hello")
			// The client never answers the close: the server does
			// not wait for it.
			expectClose(t, rc, 1002)
			waitDone(t, c)
		})
	}
}

func TestInvalidCloseFramesAreProtocolErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload []byte
		code    int
	}{
		{"one byte", []byte{0x03}, 1002},
		{"code 1005", rawws.ClosePayload(1005, ""), 1002},
		{"code 999", rawws.ClosePayload(999, ""), 1002},
		{"code 5000", rawws.ClosePayload(5000, ""), 1002},
		{"reason not UTF-8", rawws.ClosePayload(1000, "\xff"), 1007},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := startRecorder(t, echo)
			rc, _ := rec.dialRawWS("")
			if err := rc.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpClose, Payload: tt.payload}); err != nil {
				t.Fatal(err)
			}
			expectClose(t, rc, tt.code)
		})
	}
}

func TestDisconnectRefusesAStatusThatMayNotBeSent(t *testing.T) {
	h := newHarness(t)
	cl, c := h.dial("")
	cl.start()
	for _, tt := range []struct {
		code   websocket.StatusCode
		reason string
	}{
		{0, ""}, {999, ""}, {1004, ""}, {1005, ""}, {1006, ""}, {1015, ""}, {2999, ""}, {5000, ""},
		{1000, strings.Repeat("r", 124)},
		{1000, "not \xff UTF-8"},
	} {
		if err := h.m.Disconnect(c, tt.code, tt.reason); !errors.Is(err, ErrInvalidStatus) {
			t.Fatalf("Disconnect(%d, %d-byte reason) = %v, want ErrInvalidStatus", tt.code, len(tt.reason), err)
		}
	}
	// Refused, so the connection is still open.
	if err := h.m.SendPersonal(ctxTimeout(t), c, Text("still here")); err != nil {
		t.Fatal(err)
	}
	if got := cl.waitTexts(1); got[0] != "still here" {
		t.Fatalf("got %q", got)
	}
}

func TestEveryCloseIsBoundedByTheCloseTimeout(t *testing.T) {
	const closeTimeout = 300 * time.Millisecond
	t.Run("peer never answers", func(t *testing.T) {
		h := newHarness(t, WithCloseTimeout(closeTimeout))
		rc, c := h.dialRawWS("")
		start := time.Now()
		if err := h.m.Disconnect(c, websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
		waitDone(t, c)
		if d := time.Since(start); d < closeTimeout || d > closeTimeout+promptly {
			t.Fatalf("closed after %v, want about the close timeout of %v", d, closeTimeout)
		}
		expectClose(t, rc, 1000)
		if s := h.m.Stats(); s.CloseTimeouts != 1 {
			t.Fatalf("CloseTimeouts = %d, want 1", s.CloseTimeouts)
		}
	})
	t.Run("peer trickles through a backlog", func(t *testing.T) {
		h := newHarness(t, WithCloseTimeout(closeTimeout))
		rc, c := h.dialRawWS("")
		for range 400 {
			if err := h.m.SendPersonal(context.Background(), c, Text(strings.Repeat("x", 64<<10))); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		if err := h.m.Disconnect(c, websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
		// The client keeps reading, slowly: progress, but 25 MB at
		// this pace would take minutes.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if _, err := rc.ReadFrame(time.Second); rawws.IsClosedByPeer(err) {
					return
				}
			}
		}()
		waitDone(t, c)
		if d := time.Since(start); d > closeTimeout+promptly {
			t.Fatalf("closed after %v, want about the close timeout of %v", d, closeTimeout)
		}
	})
}
