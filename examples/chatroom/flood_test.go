//go:build unix

package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// TestChatFloodWithStalledReader replays BEHAVIOUR.md §5, where the
// tutorial's room froze for good: 50 clients join, h10 completes its
// handshake with a 4 KiB receive buffer and never reads, and h49 sends
// 5,000 messages of about 2 KB as fast as it can. Every other reader gets
// all 5,000 relays in order, the sender gets all its replies, and h10 is
// dropped (its leave line reaches everyone).
//
// The 48 readers read frames raw: 240,000 messages through full clients
// are slow enough under the race detector to turn the healthy readers into
// stalled ones.
func TestChatFloodWithStalledReader(t *testing.T) {
	const (
		clients  = 50
		stalled  = 10
		sender   = clients - 1
		messages = 5000
	)
	cfg := demo.DefaultConfig()
	cfg.PingInterval = 0 // the raw readers do not answer pings
	srv, m := startServer(t, &cfg)
	// A read waits for the flood of every other reader's share of the
	// machine, under the race detector, on two cores.
	srv.Timeout = 30 * time.Second

	pad := strings.Repeat("x", 2000)
	payload := func(k int) string { return fmt.Sprintf("m%05d%s", k, pad) }
	relays := make([][]byte, messages)
	for k := range relays {
		relays[k] = []byte("h49 发送消息:" + payload(k))
	}
	stalledLeft := "h10 离开了聊天室"

	readers := make([]*wsroomtest.RawClient, clients)
	var senderClient *wsroomtest.Client
	for i := range clients {
		id := fmt.Sprintf("h%d", i)
		switch i {
		case stalled:
			srv.Dial("/ws/"+id, wsroomtest.Paused(), wsroomtest.ReceiveBuffer(4096))
		case sender:
			senderClient = srv.Dial("/ws/" + id)
		default:
			readers[i] = srv.DialRaw("/ws/" + id)
		}
		// h0 sees every join in order: wait for it so that the next
		// client joins after this one.
		readers[0].ExpectText(id + " 进入了聊天室")
	}

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, r := range readers {
		if r == nil {
			continue
		}
		wg.Go(func() {
			// Its own join line and the later ones; h0 has read them.
			for j := i; i > 0 && j < clients; j++ {
				if err := expectFrame(r, fmt.Appendf(nil, "h%d 进入了聊天室", j)); err != nil {
					errs <- fmt.Errorf("h%d: %w", i, err)
					return
				}
			}
			if err := readFlood(r, relays, []byte(stalledLeft)); err != nil {
				errs <- fmt.Errorf("h%d: %w", i, err)
			}
		})
	}

	for k := range messages {
		senderClient.Send(payload(k))
	}
	// The sender's client has queued what it received meanwhile.
	expectAround(t, senderClient, 1+2*messages, func(i int) string {
		switch {
		case i == 0:
			return "h49 进入了聊天室"
		case i%2 == 1:
			return "h49 发送消息:" + payload(i/2)
		default:
			return "服务端回复h49:你发送的信息是:" + payload(i/2-1)
		}
	}, stalledLeft)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(m.Members(defaultRoom)); n != clients-1 {
		t.Errorf("room has %d members, want %d", n, clients-1)
	}
}

// readFlood reads the relays in order, with the text extra exactly once
// anywhere among them or right after them.
func readFlood(r *wsroomtest.RawClient, relays [][]byte, extra []byte) error {
	seenExtra := false
	for k := 0; k < len(relays) || !seenExtra; {
		text, err := readText(r)
		if err != nil {
			return fmt.Errorf("after %d relays: %w", k, err)
		}
		if !seenExtra && bytes.Equal(text, extra) {
			seenExtra = true
			continue
		}
		if k == len(relays) || !bytes.Equal(text, relays[k]) {
			return fmt.Errorf("relay %d: got %s", k, demotest.Abbrev(string(text)))
		}
		k++
	}
	return nil
}

// readText reads one frame, which must be a whole text message from the
// server.
func readText(r *wsroomtest.RawClient) ([]byte, error) {
	f, err := r.ReadFrame()
	if err != nil {
		return nil, err
	}
	if f.Opcode != wsroomtest.OpText || !f.Fin || !f.Unmasked {
		return nil, fmt.Errorf("got a frame of opcode %d, final %v, unmasked %v: want a final, unmasked text frame", f.Opcode, f.Fin, f.Unmasked)
	}
	return f.Payload, nil
}

func expectFrame(r *wsroomtest.RawClient, want []byte) error {
	got, err := readText(r)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("got %s, want %s", demotest.Abbrev(string(got)), demotest.Abbrev(string(want)))
	}
	return nil
}
