//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
)

// TestChatFloodWithStalledReader replays BEHAVIOUR.md §5, where the
// tutorial's room froze for good: 50 clients join, h10 completes its
// handshake with a 4 KiB receive buffer and never reads, and h49 sends
// 5,000 messages of about 2 KB as fast as it can. Every other reader gets
// all 5,000 relays in order, the sender gets all its replies, and h10 is
// dropped (its leave line reaches everyone).
//
// The 48 readers parse frames by hand: 240,000 reads through a full
// client are slow enough under the race detector to turn the healthy
// readers into stalled ones.
func TestChatFloodWithStalledReader(t *testing.T) {
	const (
		clients  = 50
		stalled  = 10
		sender   = clients - 1
		messages = 5000
	)
	cfg := demo.DefaultConfig()
	cfg.PingInterval = 0 // the hand-made readers do not answer pings
	srv, m := startServer(t, &cfg)
	addr := srv.Listener.Addr().String()

	pad := strings.Repeat("x", 2000)
	payload := func(k int) string { return fmt.Sprintf("m%05d%s", k, pad) }
	relays := make([][]byte, messages)
	for k := range relays {
		relays[k] = []byte("h49 发送消息:" + payload(k))
	}
	stalledLeft := []byte("h10 离开了聊天室")

	readers := make([]*bufio.Reader, clients)
	var senderConn *websocket.Conn
	for i := range clients {
		id := fmt.Sprintf("h%d", i)
		switch i {
		case stalled:
			rawDial(t, addr, "/ws/"+id, 4096)
		case sender:
			senderConn = join(t, srv, "/ws/"+id)
		default:
			_, readers[i] = rawDial(t, addr, "/ws/"+id, 0)
		}
		// h0 sees every join in order: wait for it so that the next
		// client joins after this one.
		if err := expectFrame(readers[0], []byte(id+" 进入了聊天室")); err != nil {
			t.Fatalf("h0: %v", err)
		}
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
			if err := readFlood(r, relays, stalledLeft); err != nil {
				errs <- fmt.Errorf("h%d: %w", i, err)
			}
		})
	}
	wg.Go(func() {
		if err := readSenderFlood(senderConn, messages, payload, string(stalledLeft)); err != nil {
			errs <- fmt.Errorf("h49: %w", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for k := range messages {
		if err := senderConn.Write(ctx, websocket.MessageText, []byte(payload(k))); err != nil {
			t.Fatalf("send %d: %v", k, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(m.Members(defaultRoom)); n != clients-1 {
		t.Errorf("room has %d members, want %d", n, clients-1)
	}
}

// readFlood reads the relays in order, with the line extra exactly once
// anywhere among them.
func readFlood(r *bufio.Reader, relays [][]byte, extra []byte) error {
	var buf []byte
	seenExtra := false
	for k := 0; k < len(relays) || !seenExtra; {
		var err error
		buf, err = readFrame(r, buf)
		if err != nil {
			return fmt.Errorf("after %d relays: %w", k, err)
		}
		if !seenExtra && bytes.Equal(buf, extra) {
			seenExtra = true
			continue
		}
		if k == len(relays) || !bytes.Equal(buf, relays[k]) {
			return fmt.Errorf("relay %d: got %s", k, demotest.Abbrev(string(buf)))
		}
		k++
	}
	return nil
}

// readSenderFlood is readFlood for the sender, whose every relay is
// followed by its personal reply.
func readSenderFlood(c *websocket.Conn, messages int, payload func(int) string, extra string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seenExtra := false
	next := func() (string, error) {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				return "", err
			}
			if !seenExtra && string(data) == extra {
				seenExtra = true
				continue
			}
			return string(data), nil
		}
	}
	if got, err := next(); err != nil || got != "h49 进入了聊天室" {
		return fmt.Errorf("got %s, %v; want its join line", demotest.Abbrev(got), err)
	}
	for k := range messages {
		for _, want := range []string{"h49 发送消息:" + payload(k), "服务端回复h49:你发送的信息是:" + payload(k)} {
			got, err := next()
			if err != nil {
				return fmt.Errorf("message %d: %w", k, err)
			}
			if got != want {
				return fmt.Errorf("message %d: got %s, want %s", k, demotest.Abbrev(got), demotest.Abbrev(want))
			}
		}
	}
	if !seenExtra {
		_, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if string(data) != extra {
			return fmt.Errorf("got %s after the flood, want %s", demotest.Abbrev(string(data)), extra)
		}
	}
	return nil
}

// rawDial opens a WebSocket by hand and returns the socket and a reader
// positioned after the handshake. A rcvbuf above zero sets the socket's
// receive buffer before it connects.
func rawDial(t *testing.T, addr, path string, rcvbuf int) (net.Conn, *bufio.Reader) {
	t.Helper()
	var d net.Dialer
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%s: HTTP %d", path, resp.StatusCode)
	}
	return conn, r
}

// readFrame reads one unfragmented text message from the server into buf.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 0x81 || h[1]&0x80 != 0 {
		return nil, fmt.Errorf("frame header %#x %#x: want a final, unmasked text frame", h[0], h[1])
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	buf = append(buf[:0], make([]byte, n)...)
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func expectFrame(r *bufio.Reader, want []byte) error {
	got, err := readFrame(r, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("got %s, want %s", demotest.Abbrev(string(got)), demotest.Abbrev(string(want)))
	}
	return nil
}
