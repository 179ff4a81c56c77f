package wsroom

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestPingDisconnectsPeerThatNeverAnswers(t *testing.T) {
	h := newHarness(t, WithPing(50*time.Millisecond, 100*time.Millisecond))
	// The client never reads, so it never answers a ping.
	_, c := h.dial("room=a&room=b")
	if n := len(h.m.Members("a")); n != 1 {
		t.Fatalf("room has %d members, want 1", n)
	}
	waitDone(t, c)
	eventually(t, "dead peer leaves its rooms", func() bool {
		return len(h.m.Members("a")) == 0 && len(h.m.Members("b")) == 0
	})
	if s := h.m.Stats(); s.PingTimeouts != 1 || s.Connections != 0 || s.Rooms != 0 {
		t.Fatalf("stats %+v, want 1 ping timeout, no connection, no room", s)
	}
}

func TestReadLimitCloses1009AndSparesOthers(t *testing.T) {
	const limit = 1024
	h := startHarness(t, harnessConfig{
		opts: []Option{WithReadLimit(limit)},
		onMessage: func(h *harness, c *Conn, msg Message) {
			if err := h.m.Broadcast(context.Background(), "r", msg); err != nil {
				t.Errorf("Broadcast: %v", err)
			}
		},
	})
	big, bigConn := h.dial("room=r")
	other, _ := h.dial("room=r")
	big.start()
	other.start()

	big.send(strings.Repeat("x", limit+1))
	if err := big.waitEnd(); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversize sender ended with %v, want close 1009", err)
	}
	waitDone(t, bigConn)

	atLimit := strings.Repeat("y", limit)
	other.send(atLimit)
	if got := other.waitTexts(1); got[0] != atLimit {
		t.Fatalf("other client got %.10q, want its own message at the limit", got[0])
	}
	if n := len(h.m.Members("r")); n != 1 {
		t.Fatalf("room has %d members, want 1", n)
	}
}

func TestBinaryMessagesRoundTrip(t *testing.T) {
	types := make(chan MessageType, 1)
	h := startHarness(t, harnessConfig{onMessage: func(h *harness, c *Conn, msg Message) {
		types <- msg.Type()
		if err := h.m.SendPersonal(context.Background(), c, msg); err != nil {
			t.Errorf("SendPersonal: %v", err)
		}
	}})
	cl, _ := h.dial("")
	cl.start()
	payload := []byte{0, 1, 2, 0xff, 0xfe}
	cl.wc.SendBinary(payload)
	if typ := <-types; typ != websocket.MessageBinary {
		t.Fatalf("server read type %v, want binary", typ)
	}
	got := cl.waitMessages(1)[0]
	if got.typ != websocket.MessageBinary || got.data != string(payload) {
		t.Fatalf("client got %v %q, want binary %q", got.typ, got.data, payload)
	}
}

func TestDisconnectIsIdempotentAndConcurrent(t *testing.T) {
	h := newHarness(t)
	cl, c := h.dial("room=a&room=b&room=c")
	cl.start()
	if got := c.Rooms(); len(got) != 3 {
		t.Fatalf("Rooms() = %v, want 3 rooms", got)
	}

	// Many goroutines at once, while the handler is in Read.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = h.m.Disconnect(c, 4000, "bye") })
	}
	wg.Wait()
	h.m.Disconnect(c, websocket.StatusNormalClosure, "") // and once more afterwards

	wantClose(t, cl.waitEnd(), 4000, "bye")
	waitDone(t, c)
	select {
	case re := <-h.readErrs:
		if re.c != c || !errors.Is(re.err, ErrClosed) {
			t.Fatalf("handler's Read failed with %v, want ErrClosed", re.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("handler's Read did not fail")
	}
	for _, name := range []string{"a", "b", "c"} {
		if n := len(h.m.Members(name)); n != 0 {
			t.Fatalf("room %s has %d members after Disconnect", name, n)
		}
	}
	if got := c.Rooms(); len(got) != 0 {
		t.Fatalf("Rooms() = %v after Disconnect, want none", got)
	}
	if s := h.m.Stats(); s.Connections != 0 || s.Rooms != 0 {
		t.Fatalf("stats %+v, want no connection and no room", s)
	}
	if err := h.m.SendPersonal(context.Background(), c, Text("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendPersonal after Disconnect: %v, want ErrClosed", err)
	}
}

func TestDisconnectSendsStatusAfterQueuedMessages(t *testing.T) {
	tests := []struct {
		name   string
		code   websocket.StatusCode
		reason string
	}{
		{"normal", websocket.StatusNormalClosure, ""},
		{"custom", 4001, "kicked"},
		{"reason of 123 bytes", 4002, strings.Repeat("r", 123)},
		{"reason in UTF-8", 4003, "x" + strings.Repeat("界", 40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			cl, c := h.dial("")
			for _, text := range []string{"one", "two"} {
				if err := h.m.SendPersonal(context.Background(), c, Text(text)); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.m.Disconnect(c, tt.code, tt.reason); err != nil {
				t.Fatal(err)
			}
			cl.start()
			wantClose(t, cl.waitEnd(), tt.code, tt.reason)
			if got := cl.texts(); len(got) != 2 || got[0] != "one" || got[1] != "two" {
				t.Fatalf("client got %q before the close, want one, two", got)
			}
		})
	}
}

func TestKeyStoresTypedValuesPerConnection(t *testing.T) {
	h := newHarness(t)
	_, c1 := h.dial("")
	_, c2 := h.dial("")
	nick := NewKey[string]("nick")
	otherNick := NewKey[string]("nick")
	score := NewKey[int]("score")

	if _, ok := nick.Get(c1); ok {
		t.Fatal("Get on an unset key reported a value")
	}
	nick.Set(c1, "ann")
	score.Set(c1, 7)
	nick.Set(c2, "bob")
	if v, ok := nick.Get(c1); !ok || v != "ann" {
		t.Fatalf("nick on c1 = %q, %v", v, ok)
	}
	if v, ok := nick.Get(c2); !ok || v != "bob" {
		t.Fatalf("nick on c2 = %q, %v", v, ok)
	}
	if v, ok := score.Get(c1); !ok || v != 7 {
		t.Fatalf("score = %d, %v", v, ok)
	}
	if _, ok := otherNick.Get(c1); ok {
		t.Fatal("a second key of the same name saw the first key's value")
	}
	nick.Delete(c1)
	if _, ok := nick.Get(c1); ok {
		t.Fatal("value still there after Delete")
	}
	if nick.String() != "nick" {
		t.Fatalf("String() = %q", nick.String())
	}

	// Safe from many goroutines.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			score.Set(c2, i)
			score.Get(c2)
		})
	}
	wg.Wait()
}

func TestMessageConstructors(t *testing.T) {
	src := []byte("abc")
	bin := Binary(src)
	src[0] = 'X'
	if bin.Text() != "abc" || bin.Type() != MessageBinary {
		t.Fatalf("Binary kept a reference to its input or lost its type: %q %v", bin.Text(), bin.Type())
	}
	txt := Text("héllo")
	if txt.Type() != MessageText || txt.Len() != len("héllo") || !bytes.Equal(txt.Bytes(), []byte("héllo")) {
		t.Fatalf("Text: %v %q", txt.Type(), txt.Bytes())
	}
	var zero Message
	if zero.Type() != MessageText || zero.Len() != 0 {
		t.Fatal("the zero Message is not an empty text message")
	}

	js, err := JSON(map[string]int{"n": 1})
	if err != nil || js.Text() != `{"n":1}` || js.Type() != MessageText {
		t.Fatalf("JSON = %q, %v", js.Text(), err)
	}
	var back struct{ N int }
	if err := js.Decode(&back); err != nil || back.N != 1 {
		t.Fatalf("Decode = %+v, %v", back, err)
	}
	if _, err := JSON(make(chan int)); err == nil {
		t.Fatal("JSON of a channel did not fail")
	}
	if err := Text("not json").Decode(&back); err == nil {
		t.Fatal("Decode of invalid JSON did not fail")
	}
}

// countingJSON counts its encodings.
type countingJSON struct{ calls *atomic.Int32 }

func (c countingJSON) MarshalJSON() ([]byte, error) {
	c.calls.Add(1)
	return []byte(`{"hello":"room"}`), nil
}

func TestJSONIsMarshalledOncePerBroadcast(t *testing.T) {
	const members = 100
	h := newHarness(t)
	var cls []*client
	for range members {
		cl, _ := h.dial("room=r")
		cls = append(cls, cl.start())
	}
	var calls atomic.Int32
	msg, err := JSON(countingJSON{&calls})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Broadcast(context.Background(), "r", msg); err != nil {
		t.Fatal(err)
	}
	for _, cl := range cls {
		if got := cl.waitTexts(1); got[0] != `{"hello":"room"}` {
			t.Fatalf("member got %q", got[0])
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("MarshalJSON called %d times for %d members, want 1", n, members)
	}
}
