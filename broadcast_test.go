package wsroom

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
)

func TestBroadcastReachesEveryMemberOnceInOneOrder(t *testing.T) {
	const (
		clients   = 8
		senders   = 4
		perSender = 250
	)
	h := newHarness(t)
	var cls []*client
	for range clients {
		cl, _ := h.dial("room=r")
		cls = append(cls, cl.start())
	}

	var g errgroup.Group
	for s := range senders {
		g.Go(func() error {
			for i := range perSender {
				if err := h.m.Broadcast(context.Background(), "r", Text(fmt.Sprintf("%d-%d", s, i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}

	first := cls[0].waitTexts(senders * perSender)
	for i, cl := range cls {
		got := cl.waitTexts(senders * perSender)
		if len(got) != senders*perSender {
			t.Fatalf("client %d: %d messages, want %d", i, len(got), senders*perSender)
		}
		if !slices.Equal(got, first) {
			t.Fatalf("client %d saw another order than client 0", i)
		}
		// Each sender's messages arrive once each, in the order it sent them.
		next := make([]int, senders)
		for _, text := range got {
			s, seq := parseSeq(t, text)
			if seq != next[s] {
				t.Fatalf("client %d: from sender %d got %d, want %d", i, s, seq, next[s])
			}
			next[s]++
		}
	}
}

// parseSeq splits "s-i" into s and i.
func parseSeq(t *testing.T, text string) (int, int) {
	t.Helper()
	a, b, ok := strings.Cut(text, "-")
	s, err1 := strconv.Atoi(a)
	i, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("unexpected message %q", text)
	}
	return s, i
}

func TestSendPersonalAndBroadcastKeepPerConnectionFIFO(t *testing.T) {
	const n = 2000
	h := newHarness(t)
	cl, c := h.dial("room=r")
	cl.start()
	ctx := ctxTimeout(t)
	var want []string
	for i := range n {
		text := strconv.Itoa(i)
		var err error
		if i%3 == 0 {
			err = h.m.Broadcast(ctx, "r", Text(text))
		} else {
			err = h.m.SendPersonal(ctx, c, Text(text))
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		want = append(want, text)
	}
	if got := cl.waitTexts(n); !slices.Equal(got, want) {
		t.Fatalf("messages arrived out of order")
	}
}

func TestBroadcastExceptLeavesTheSenderOut(t *testing.T) {
	// Each message a client sends is broadcast to its room except itself,
	// then answered personally: the sender's first message is the answer.
	h := startHarness(t, harnessConfig{onMessage: func(h *harness, c *Conn, msg Message) {
		ctx := context.Background()
		if err := h.m.Broadcast(ctx, "r", msg, c); err != nil {
			t.Errorf("Broadcast: %v", err)
		}
		if err := h.m.SendPersonal(ctx, c, Text("ack")); err != nil {
			t.Errorf("SendPersonal: %v", err)
		}
	}})
	sender, senderConn := h.dial("room=r")
	other1, _ := h.dial("room=r")
	other2, _ := h.dial("room=r")
	for _, cl := range []*client{sender, other1, other2} {
		cl.start()
	}
	sender.send("hello")
	if got := sender.waitTexts(1); got[0] != "ack" {
		t.Fatalf("sender first got %q, want only the personal ack", got[0])
	}
	for _, cl := range []*client{other1, other2} {
		if got := cl.waitTexts(1); got[0] != "hello" {
			t.Fatalf("member got %q, want hello", got[0])
		}
	}
	// BroadcastAll honours Except too.
	if err := h.m.BroadcastAll(context.Background(), Text("all"), senderConn); err != nil {
		t.Fatalf("BroadcastAll: %v", err)
	}
	if err := h.m.SendPersonal(context.Background(), senderConn, Text("after")); err != nil {
		t.Fatalf("SendPersonal: %v", err)
	}
	if got := sender.waitTexts(2); got[1] != "after" {
		t.Fatalf("sender got %q after BroadcastAll with Except, want after", got[1])
	}
	for _, cl := range []*client{other1, other2} {
		if got := cl.waitTexts(2); got[1] != "all" {
			t.Fatalf("member got %q, want all", got[1])
		}
	}
}

// paced broadcasts msg to room after every reader has received all it was
// sent before, so that a reader's queue never holds more than one message:
// the readers can never be the slow consumers of a test.
type paced struct {
	t       *testing.T
	m       *ConnectionManager
	room    string
	readers []*client
	sent    int
}

func (p *paced) broadcast(msg Message) {
	p.t.Helper()
	for _, cl := range p.readers {
		cl.waitMessages(p.sent)
	}
	if err := p.m.Broadcast(context.Background(), p.room, msg); err != nil {
		p.t.Fatalf("Broadcast: %v", err)
	}
	p.sent++
}

// stallPeer broadcasts fillers of size bytes until stalled's queue holds
// want messages. stalled's client does not read, and its socket buffers
// are small, so its writer is blocked on the first filler and every later
// one stays queued. It returns how many fillers it sent.
func (p *paced) stallPeer(stalled *Conn, want, size int) int {
	p.t.Helper()
	fillers := 0
	for queueLen(stalled) < want {
		if fillers > 1000 {
			p.t.Fatalf("queue of the stalled peer never reached %d", want)
		}
		p.broadcast(filler(fillers, size))
		fillers++
	}
	return fillers
}

func filler(i, size int) Message {
	prefix := fmt.Sprintf("f%d:", i)
	return Text(prefix + strings.Repeat("x", size-len(prefix)))
}

func fillerName(s string) string {
	name, _, _ := strings.Cut(s, ":")
	return name
}

func TestSlowConsumerPolicies(t *testing.T) {
	const (
		limit      = 4
		fillerSize = 1 << 20 // more than all the socket buffers on the way
	)
	tests := []struct {
		policy SlowConsumerPolicy
		// want returns what the stalled client receives once it reads
		// again, given the number of fillers sent and how many it got
		// before the queued ones.
		want      func(fillers, inFlight int) []string
		wantClose bool // the stalled client is evicted with 1013
		stats     Stats
	}{{
		policy: DropNewest,
		want: func(fillers, _ int) []string {
			return append(fillerNames(0, fillers), "after")
		},
		stats: Stats{DroppedNewest: 3},
	}, {
		policy: DropOldest,
		want: func(fillers, _ int) []string {
			// The queue held the last four fillers; each new message
			// pushed out the oldest of them.
			return append(fillerNames(0, fillers-limit), "f"+strconv.Itoa(fillers-1), "new-0", "new-1", "new-2", "after")
		},
		stats: Stats{DroppedOldest: 3},
	}, {
		policy: Evict,
		want: func(fillers, inFlight int) []string {
			return fillerNames(0, inFlight)
		},
		wantClose: true,
		stats:     Stats{Evicted: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			h := startHarness(t, harnessConfig{
				opts: []Option{
					WithQueueLimit(limit, 1<<30),
					WithSlowConsumerPolicy(tt.policy),
				},
				smallSendBuffers: true,
			})
			stalled, stalledConn := h.dialStalling("room=r")
			fast1, _ := h.dial("room=r")
			fast2, _ := h.dial("room=r")
			p := &paced{t: t, m: h.m, room: "r", readers: []*client{fast1.start(), fast2.start()}}

			fillers := p.stallPeer(stalledConn, limit, fillerSize)
			for i := range 3 {
				p.broadcast(Text("new-" + strconv.Itoa(i)))
			}
			if !tt.wantClose {
				// Let the stalled client drain, then send one more.
				stalled.start()
				stalled.waitMessages(len(tt.want(fillers, 0)) - 1)
			}
			p.broadcast(Text("after"))
			stalled.start()

			// The readers got everything.
			wantFast := append(fillerNames(0, fillers), "new-0", "new-1", "new-2", "after")
			for _, cl := range p.readers {
				if got := names(cl.waitTexts(len(wantFast))); !slices.Equal(got, wantFast) {
					t.Fatalf("reader got %v, want %v", got, wantFast)
				}
			}

			var got []string
			if tt.wantClose {
				err := stalled.waitEnd()
				wantClose(t, err, StatusSlowConsumer, "slow consumer")
				got = names(stalled.texts())
				if want := tt.want(fillers, len(got)); !slices.Equal(got, want) || len(got) > fillers-limit {
					t.Fatalf("evicted client got %v, want a prefix of the fillers", got)
				}
				waitDone(t, stalledConn)
				if n := len(h.m.Members("r")); n != 2 {
					t.Fatalf("room has %d members after eviction, want 2", n)
				}
			} else {
				want := tt.want(fillers, 0)
				got = names(stalled.waitTexts(len(want)))
				if !slices.Equal(got, want) {
					t.Fatalf("stalled client got %v, want %v", got, want)
				}
			}

			s := h.m.Stats()
			if s.DroppedNewest != tt.stats.DroppedNewest || s.DroppedOldest != tt.stats.DroppedOldest || s.Evicted != tt.stats.Evicted {
				t.Fatalf("stats: dropped newest %d, dropped oldest %d, evicted %d; want %d, %d, %d",
					s.DroppedNewest, s.DroppedOldest, s.Evicted, tt.stats.DroppedNewest, tt.stats.DroppedOldest, tt.stats.Evicted)
			}
		})
	}
}

func fillerNames(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, "f"+strconv.Itoa(i))
	}
	return out
}

func names(texts []string) []string {
	out := make([]string, len(texts))
	for i, s := range texts {
		out[i] = fillerName(s)
	}
	return out
}

func TestBroadcastDoesNotWaitForSlowPeer(t *testing.T) {
	h := startHarness(t, harnessConfig{
		// A write timeout far beyond the test, so the peer stays stalled.
		opts:             []Option{WithWriteTimeout(time.Hour)},
		smallSendBuffers: true,
	})
	raw, stalledConn := h.dialRaw("room=r")
	fast1, _ := h.dial("room=r")
	fast2, _ := h.dial("room=r")
	p := &paced{t: t, m: h.m, room: "r", readers: []*client{fast1.start(), fast2.start()}}

	// The stalled peer's writer is blocked and messages pile up behind it.
	p.stallPeer(stalledConn, 4, 1<<20)
	for i := range 50 {
		p.broadcast(Text("later-" + strconv.Itoa(i)))
	}
	for _, cl := range p.readers {
		cl.waitMessages(p.sent)
	}
	if n := queueLen(stalledConn); n < 54 {
		t.Fatalf("stalled peer's queue has %d messages, want every later one (54)", n)
	}
	if s := h.m.Stats(); s.Evicted != 0 || s.WriteTimeouts != 0 {
		t.Fatalf("stalled peer was already dropped: %+v", s)
	}
	// Closing the stalled peer fails its blocked write.
	_ = raw.Close()
	waitDone(t, stalledConn)
}

func TestStalledPeerIsDisconnectedByWriteTimeout(t *testing.T) {
	h := startHarness(t, harnessConfig{
		opts:             []Option{WithWriteTimeout(300 * time.Millisecond)},
		smallSendBuffers: true,
	})
	_, stalledConn := h.dialRaw("room=r")
	fast1, _ := h.dial("room=r")
	fast2, _ := h.dial("room=r")
	p := &paced{t: t, m: h.m, room: "r", readers: []*client{fast1.start(), fast2.start()}}

	deadline := time.Now().Add(waitTimeout)
	for h.m.Stats().WriteTimeouts == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled peer was not disconnected within %v: %+v, queue %d", waitTimeout, h.m.Stats(), queueLen(stalledConn))
		}
		p.broadcast(Text(fmt.Sprintf("%d:%s", p.sent, strings.Repeat("x", 1000))))
	}
	waitDone(t, stalledConn)
	eventually(t, "stalled peer leaves the room", func() bool { return len(h.m.Members("r")) == 2 })
	p.broadcast(Text(fmt.Sprintf("%d:last", p.sent)))
	for _, cl := range p.readers {
		got := cl.waitTexts(p.sent)
		for i, text := range got {
			if !strings.HasPrefix(text, strconv.Itoa(i)+":") {
				t.Fatalf("reader's message %d is %.10q", i, text)
			}
		}
	}
	s := h.m.Stats()
	if s.WriteTimeouts != 1 || s.Evicted != 0 || s.Connections != 2 {
		t.Fatalf("stats %+v, want 1 write failure, no eviction, 2 connections", s)
	}
}

func TestMessageLargerThanByteBoundFitsAnEmptyQueue(t *testing.T) {
	h := newHarness(t, WithQueueLimit(16, 1024))
	cl, c := h.dial("")
	cl.start()
	big := strings.Repeat("b", 8<<10)
	for i := range 3 {
		if err := h.m.SendPersonal(context.Background(), c, Text(big)); err != nil {
			t.Fatalf("SendPersonal %d of a message over the byte bound: %v", i, err)
		}
		cl.waitMessages(i + 1)
	}
	// The writer counts a batch once it is written, which may be just
	// after the client has read it.
	eventually(t, "3 messages counted as sent", func() bool { return h.m.Stats().Sent == 3 })
	if s := h.m.Stats(); s.Evicted != 0 {
		t.Fatalf("stats %+v, want no eviction", s)
	}
}

func TestCoalescingKeepsOrderTypesAndCounts(t *testing.T) {
	h := startHarness(t, harnessConfig{opts: []Option{WithCoalescing("\n")}, smallSendBuffers: true})
	cl, c := h.dialStalling("")
	ctx := context.Background()
	var want []string
	for i := range 300 {
		var err error
		if i == 150 {
			err = h.m.SendPersonal(ctx, c, Binary([]byte("bin")))
		} else {
			text := fmt.Sprintf("%d:%s", i, strings.Repeat("x", 1000))
			want = append(want, text)
			err = h.m.SendPersonal(ctx, c, Text(text))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cl.start()
	eventually(t, "every message is sent", func() bool { return h.m.Stats().Sent == 300 })
	if err := h.m.SendPersonal(ctx, c, Binary([]byte("end"))); err != nil {
		t.Fatal(err)
	}
	var got []string
	binaries := 0
	for msgs := cl.waitMessages(1); msgs[len(msgs)-1].data != "end"; {
		msgs = cl.waitMessages(len(msgs) + 1)
	}
	for _, m := range cl.messages() {
		if len(m.data) > 64<<10 {
			t.Fatalf("a merged message of %d bytes, over 64 KiB", len(m.data))
		}
		if m.typ == websocket.MessageBinary {
			if m.data != "bin" && m.data != "end" {
				t.Fatalf("binary message merged with others: %.20q", m.data)
			}
			binaries++
			continue
		}
		got = append(got, strings.Split(m.data, "\n")...)
	}
	t.Logf("%d messages arrived in %d WebSocket messages", len(want)+2, len(cl.messages()))
	if binaries != 2 || !slices.Equal(got, want) {
		t.Fatalf("got %d binaries and %d texts (in order: %v), want 2 and %d", binaries, len(got), slices.Equal(got, want), len(want))
	}
}

func TestBroadcastAllocationsDoNotGrowWithMembers(t *testing.T) {
	if raceEnabled {
		// The race detector makes sync.Pool drop items at random, so the
		// writers' pooled rings and buffers are allocated per recipient.
		t.Skip("allocation counts depend on sync.Pool, which -race randomizes")
	}
	allocs := func(members int) float64 {
		m, err := New(WithPing(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer shutdownBench(t, m)
		for range members {
			connectDiscarding(t, m, "room")
		}
		msg := Text("shared by every member")
		ctx := context.Background()
		// Writers included: queue, wake the writer, write, let it exit.
		return testing.AllocsPerRun(20, func() {
			if err := m.Broadcast(ctx, "room", msg); err != nil {
				t.Fatal(err)
			}
			waitDrained(t, m)
		})
	}
	few, many := allocs(10), allocs(1000)
	// A few allocations of the runtime's (goroutine structs, pooled
	// buffers refilled after a GC) come and go; 990 more recipients may
	// not add one allocation each, nor one per ten.
	if perRecipient := (many - few) / 990; perRecipient > 0.01 {
		t.Fatalf("a broadcast to 10 members made %.1f allocations, to 1000 members %.1f: %.3f per recipient", few, many, perRecipient)
	}
}

// TestQueuedMessagesAreWrittenTogether pins the gathering doc.go and the
// README promise: messages that wait in a queue together go out in few
// socket writes, whether they were broadcast on this process or arrived
// together from the broker. The writers are held while the messages are
// queued, as they are while busy with a socket, so that the queues are
// full when they start; one write per message would be 2,000 writes.
func TestQueuedMessagesAreWrittenTogether(t *testing.T) {
	const messages = 2000
	broker := NewMemoryBroker()
	local := newHarness(t, WithBroker(broker), WithNodeID("local"))
	remote := newHarness(t, WithBroker(broker), WithNodeID("remote"))
	var conns []*Conn
	for _, h := range []*harness{local, remote} {
		cl, c := h.dial("room=r")
		cl.start()
		c.mu.Lock()
		c.writing = true // a writer is busy, as far as the queue knows
		c.mu.Unlock()
		conns = append(conns, c)
	}
	line := Text(strings.Repeat("g", 100))
	ctx := ctxTimeout(t)
	for range messages {
		if err := local.m.Broadcast(ctx, "r", line); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		eventually(t, "every message is queued", func() bool { return queueLen(c) == messages })
		c.mu.Lock()
		c.writing = false
		c.startWriterLocked()
		c.mu.Unlock()
	}
	for _, h := range []*harness{local, remote} {
		eventually(t, "every message is written", func() bool { return h.m.Stats().Sent == messages })
	}
	lw, rw := local.m.Stats().Writes, remote.m.Stats().Writes
	t.Logf("socket writes for %d messages: %d local, %d from the broker", messages, lw, rw)
	if lw > messages/10 || rw > messages/10 {
		t.Errorf("%d messages took %d socket writes (local) and %d (from the broker), want them gathered (at most %d)", messages, lw, rw, messages/10)
	}
}
