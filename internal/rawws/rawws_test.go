package rawws

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of these tests for something expected.
const wait = 5 * time.Second

func TestRawEncodeRFCExamples(t *testing.T) {
	// RFC 6455, section 5.7.
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, tc := range []struct {
		name string
		f    Frame
		want []byte
	}{
		{"unmasked text", Frame{Fin: true, Opcode: OpText, Payload: []byte("Hello")},
			[]byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked text", Frame{Fin: true, Opcode: OpText, Masked: true, MaskKey: key, Payload: []byte("Hello")},
			[]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"first fragment", Frame{Opcode: OpText, Payload: []byte("Hel")},
			[]byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{"last fragment", Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("lo")},
			[]byte{0x80, 0x02, 0x6c, 0x6f}},
		{"unmasked ping", Frame{Fin: true, Opcode: OpPing, Payload: []byte("Hello")},
			[]byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"rsv bits", Frame{Fin: true, Rsv: Rsv1 | Rsv3, Opcode: 0xB},
			[]byte{0xDB, 0x00}},
	} {
		if got := Encode(tc.f); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: Encode = % x, want % x", tc.name, got, tc.want)
		}
	}
	// 256 bytes and 64 KiB take the 16-bit and 64-bit lengths.
	if got := Encode(Frame{Fin: true, Opcode: OpBinary, Payload: make([]byte, 256)}); !bytes.Equal(got[:4], []byte{0x82, 0x7E, 0x01, 0x00}) {
		t.Errorf("256-byte header = % x", got[:4])
	}
	if got := Encode(Frame{Fin: true, Opcode: OpBinary, Payload: make([]byte, 65536)}); !bytes.Equal(got[:10], []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("64 KiB header = % x", got[:10])
	}
}

func TestRawRoundTrip(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		for _, f := range []Frame{
			{Fin: true, Opcode: OpBinary, Payload: payload},
			{Fin: false, Rsv: Rsv2, Opcode: OpText, Masked: true, MaskKey: key, Payload: payload},
			{Fin: true, Rsv: 7, Opcode: 0xF, Masked: true, MaskKey: key, Payload: payload},
		} {
			wire := Encode(f)
			got, err := Decode(bytes.NewReader(wire))
			if err != nil {
				t.Fatalf("len %d %v: Decode: %v", n, f, err)
			}
			if !framesEqual(got, f) {
				t.Fatalf("len %d: round trip gave %v, want %v", n, got, f)
			}
			// Frames arriving in pieces parse the same.
			c := &Conn{buf: wire[:len(wire)-1]}
			if _, _, ok, err := c.parse(); ok || err != nil {
				t.Fatalf("len %d: incomplete frame parsed: ok=%v err=%v", n, ok, err)
			}
			c.buf = wire
			got, used, ok, err := c.parse()
			if !ok || err != nil || used != len(wire) || !framesEqual(got, f) {
				t.Fatalf("len %d: parse = %v, %d, %v, %v", n, got, used, ok, err)
			}
		}
		// EncodeClient always masks, with a fresh key.
		f := Frame{Fin: true, Opcode: OpText, Payload: payload}
		got, err := Decode(bytes.NewReader(EncodeClient(f)))
		if err != nil || !got.Masked || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("len %d: EncodeClient round trip = %v, %v", n, got, err)
		}
	}
	// A key given with Masked is kept.
	f := Frame{Fin: true, Opcode: OpText, Masked: true, MaskKey: key, Payload: []byte("abc")}
	if !bytes.Equal(EncodeClient(f), Encode(f)) {
		t.Error("EncodeClient replaced a given mask key")
	}
}

func framesEqual(a, b Frame) bool {
	return a.Fin == b.Fin && a.Rsv == b.Rsv && a.Opcode == b.Opcode && a.Masked == b.Masked &&
		(!a.Masked || a.MaskKey == b.MaskKey) && bytes.Equal(a.Payload, b.Payload)
}

func TestRawDecodeErrors(t *testing.T) {
	if _, err := Decode(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
	wire := Encode(Frame{Fin: true, Opcode: OpText, Payload: []byte("hello")})
	for n := 1; n < len(wire); n++ {
		if _, err := Decode(bytes.NewReader(wire[:n])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d of %d bytes: %v, want io.ErrUnexpectedEOF", n, len(wire), err)
		}
	}
	msb := []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1}
	if _, err := Decode(bytes.NewReader(msb)); !errors.Is(err, ErrProtocol) {
		t.Errorf("64-bit length with MSB set: %v, want ErrProtocol", err)
	}
	huge := []byte{0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0}
	if _, err := Decode(bytes.NewReader(huge)); !errors.Is(err, ErrProtocol) {
		t.Errorf("4 GiB payload: %v, want ErrProtocol", err)
	}
}

func TestRawClosePayload(t *testing.T) {
	p := ClosePayload(1000, "bye")
	if !bytes.Equal(p, []byte{0x03, 0xE8, 'b', 'y', 'e'}) {
		t.Errorf("ClosePayload = % x", p)
	}
	if code, reason, err := ParseClose(p); code != 1000 || reason != "bye" || err != nil {
		t.Errorf("ParseClose = %d, %q, %v", code, reason, err)
	}
	if code, _, err := ParseClose(ClosePayload(65535, "")); code != 65535 || err != nil {
		t.Errorf("ParseClose(65535) = %d, %v", code, err)
	}
	if code, reason, err := ParseClose(nil); code != NoStatus || reason != "" || err != nil {
		t.Errorf("ParseClose(empty) = %d, %q, %v", code, reason, err)
	}
	if _, _, err := ParseClose([]byte{3}); err == nil {
		t.Error("ParseClose accepted a 1-byte payload")
	}
	if code, reason, err := ParseClose(ClosePayload(1000, "\xed\xa0\x80")); code != 1000 || reason != "\xed\xa0\x80" || err == nil {
		t.Errorf("ParseClose(invalid UTF-8 reason) = %d, %q, %v", code, reason, err)
	}
}

// serve starts a server whose handler completes the handshake for each
// request and runs script on the hijacked connection. The bytes of early
// go out in the same write as the 101 response. Cleanup waits for every
// script to return.
func serve(t *testing.T, early []byte, script func(nc net.Conn, br *bufio.Reader)) string {
	t.Helper()
	var running sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Done()
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" ||
			r.Header.Get("Sec-WebSocket-Version") != "13" || r.Header.Get("Sec-WebSocket-Key") == "" {
			http.Error(w, "bad handshake", http.StatusBadRequest)
			return
		}
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer nc.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			AcceptKey(r.Header.Get("Sec-WebSocket-Key")))
		brw.Write(early)
		if err := brw.Flush(); err != nil {
			t.Errorf("write handshake: %v", err)
			return
		}
		_ = nc.SetDeadline(time.Now().Add(wait))
		script(nc, brw.Reader)
	}))
	t.Cleanup(func() {
		srv.Close()
		running.Wait()
	})
	return srv.Listener.Addr().String()
}

func dial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, resp, err := Dial(addr, "/", nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("Dial: status %s", resp.Status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRawDialEcho(t *testing.T) {
	early := Encode(Frame{Fin: true, Opcode: OpText, Payload: []byte("early")})
	// The server sends each frame back exactly as it decoded it, mask
	// bit and key included, until a close frame.
	addr := serve(t, early, func(nc net.Conn, br *bufio.Reader) {
		for {
			f, err := Decode(br)
			if err != nil {
				return
			}
			if _, err := nc.Write(Encode(f)); err != nil || f.Opcode == OpClose {
				return
			}
		}
	})
	c := dial(t, addr)

	f, err := c.ReadFrame(wait)
	if err != nil || string(f.Payload) != "early" || f.Opcode != OpText || !f.Fin {
		t.Fatalf("first frame = %v, %v; want the text frame sent with the 101", f, err)
	}
	if _, err := c.ReadFrame(50 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame with nothing sent: %v, want a deadline error", err)
	}

	sent := Frame{Fin: false, Rsv: Rsv1, Opcode: OpBinary, Payload: []byte{0, 1, 2, 0xff}}
	if err := c.WriteFrame(sent); err != nil {
		t.Fatal(err)
	}
	f, err = c.ReadFrame(wait)
	if err != nil || !f.Masked || f.Fin || f.Rsv != Rsv1 || f.Opcode != OpBinary || !bytes.Equal(f.Payload, sent.Payload) {
		t.Fatalf("echo of a masked frame = %v, %v", f, err)
	}

	// An unmasked client frame, on purpose.
	if err := c.WriteRaw(Encode(Frame{Fin: true, Opcode: OpText, Payload: []byte("bare")})); err != nil {
		t.Fatal(err)
	}
	f, err = c.ReadFrame(wait)
	if err != nil || f.Masked || string(f.Payload) != "bare" {
		t.Fatalf("echo of an unmasked frame = %v, %v", f, err)
	}

	// Chopped into single bytes.
	if err := c.WriteChopped(EncodeClient(Frame{Fin: true, Opcode: OpPing, Payload: []byte("chop")}), 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	f, err = c.ReadFrame(wait)
	if err != nil || f.Opcode != OpPing || string(f.Payload) != "chop" {
		t.Fatalf("echo of a chopped frame = %v, %v", f, err)
	}
	if err := c.WriteChopped([]byte("x"), 0, 0); err == nil {
		t.Error("WriteChopped accepted a chunk size of 0")
	}

	if err := c.WriteFrame(Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(1000, "")}); err != nil {
		t.Fatal(err)
	}
	frames, err := c.ExpectEOF(wait)
	if err != nil || len(frames) != 1 || frames[0].Opcode != OpClose {
		t.Fatalf("ExpectEOF = %v, %v; want the echoed close frame, then EOF", frames, err)
	}
	if _, err := c.ReadFrame(wait); err != io.EOF {
		t.Fatalf("ReadFrame after EOF: %v, want io.EOF", err)
	}
}

func TestRawReadFrameKeepsPartialFrame(t *testing.T) {
	wire := Encode(Frame{Fin: true, Opcode: OpBinary, Payload: bytes.Repeat([]byte("ab"), 1000)})
	half := make(chan struct{})
	addr := serve(t, wire[:700], func(nc net.Conn, br *bufio.Reader) {
		select {
		case <-half:
		case <-time.After(wait):
			return
		}
		_, _ = nc.Write(wire[700:])
		_, _ = io.Copy(io.Discard, br)
	})
	c := dial(t, addr)
	if f, err := c.ReadFrame(50 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame on a partial frame = %v, %v; want a deadline error", f, err)
	}
	close(half)
	f, err := c.ReadFrame(wait)
	if err != nil || !bytes.Equal(Encode(f), wire) {
		t.Fatalf("ReadFrame after a timeout = %v, %v; want the whole frame", f, err)
	}
}

func TestRawExpectEOF(t *testing.T) {
	two := append(Encode(Frame{Fin: true, Opcode: OpText, Payload: []byte("a")}),
		Encode(Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(1002, "")})...)
	t.Run("close", func(t *testing.T) {
		c := dial(t, serve(t, two, func(net.Conn, *bufio.Reader) {}))
		frames, err := c.ExpectEOF(wait)
		if err != nil || len(frames) != 2 || string(frames[0].Payload) != "a" || frames[1].Opcode != OpClose {
			t.Fatalf("ExpectEOF = %v, %v", frames, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c := dial(t, serve(t, two, func(nc net.Conn, _ *bufio.Reader) {
			_ = nc.(*net.TCPConn).SetLinger(0)
		}))
		frames, err := c.ExpectEOF(wait)
		if err != nil {
			t.Fatalf("ExpectEOF after a reset = %v, %v", frames, err)
		}
	})
	t.Run("open", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		c := dial(t, serve(t, two, func(net.Conn, *bufio.Reader) {
			select {
			case <-release:
			case <-time.After(wait):
			}
		}))
		frames, err := c.ExpectEOF(100 * time.Millisecond)
		if !errors.Is(err, os.ErrDeadlineExceeded) || len(frames) != 2 {
			t.Fatalf("ExpectEOF on an open connection = %v, %v; want 2 frames and a deadline error", frames, err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		c := dial(t, serve(t, two[:len(two)-1], func(net.Conn, *bufio.Reader) {}))
		frames, err := c.ExpectEOF(wait)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(frames) != 1 {
			t.Fatalf("ExpectEOF inside a frame = %v, %v; want 1 frame and io.ErrUnexpectedEOF", frames, err)
		}
	})
}

func TestRawDialRefused(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		http.Error(w, "go away", http.StatusForbidden)
	}))
	defer srv.Close()
	header := http.Header{
		"Sec-WebSocket-Version": {"8"},
		"X-Test":                {"1"},
		"Connection":            nil, // removed
	}
	c, resp, err := Dial(srv.Listener.Addr().String(), "/path?q=1", header)
	if c != nil || !errors.Is(err, ErrHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial = %v, %v, %v; want no Conn, the 403 and ErrHandshake", c, resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(body)) != "go away" {
		t.Errorf("body = %q", body)
	}
	if got.Get("Sec-WebSocket-Version") != "8" || got.Get("X-Test") != "1" || got.Get("Connection") != "" || got.Get("Upgrade") != "websocket" {
		t.Errorf("server saw %v", got)
	}
}

func TestRawDialBadAccept(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Sec-WebSocket-Accept", AcceptKey("not the key"))
		w.WriteHeader(http.StatusSwitchingProtocols)
	}))
	defer srv.Close()
	c, resp, err := Dial(srv.Listener.Addr().String(), "/", nil)
	if c != nil || !errors.Is(err, ErrHandshake) || resp == nil {
		t.Fatalf("Dial = %v, %v, %v; want no Conn, the response and ErrHandshake", c, resp, err)
	}
}
