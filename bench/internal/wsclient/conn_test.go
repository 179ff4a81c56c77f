package wsclient

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// serverFrame encodes an unmasked frame as a server sends it.
func serverFrame(fin bool, op Opcode, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

type clientFrame struct {
	fin     bool
	op      Opcode
	payload []byte
}

// readClientFrame decodes one frame written by Conn, which must be masked.
func readClientFrame(r io.Reader) (clientFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return clientFrame{}, err
	}
	if h[1]&0x80 == 0 {
		return clientFrame{}, errors.New("client frame is not masked")
	}
	n := uint64(h[1] & 0x7f)
	var ext [8]byte
	switch n {
	case 126:
		if _, err := io.ReadFull(r, ext[:2]); err != nil {
			return clientFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:2]))
	case 127:
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return clientFrame{}, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	var key [4]byte
	if _, err := io.ReadFull(r, key[:]); err != nil {
		return clientFrame{}, err
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return clientFrame{}, err
	}
	mask(payload, key)
	return clientFrame{fin: h[0]&0x80 != 0, op: Opcode(h[0] & 0x0f), payload: payload}, nil
}

// readClientFrameAsync reads one client frame in the background.
func readClientFrameAsync(r io.Reader) <-chan clientFrame {
	ch := make(chan clientFrame, 1)
	go func() {
		f, err := readClientFrame(r)
		if err != nil {
			f = clientFrame{op: 0xff, payload: []byte(err.Error())}
		}
		ch <- f
	}()
	return ch
}

// pipeConn returns a Conn over one end of a pipe and the server's end. The
// server's writes go through a goroutine so that they never deadlock with
// the client's answers on the synchronous pipe; a nil element closes the
// server's end.
func pipeConn(t *testing.T, serverBytes ...[]byte) (*Conn, net.Conn) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	deadline := time.Now().Add(5 * time.Second)
	if err := client.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if err := server.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, b := range serverBytes {
			if b == nil {
				server.Close()
				return
			}
			if _, err := server.Write(b); err != nil {
				return
			}
		}
	}()
	return newConn(client, bufio.NewReaderSize(client, 64)), server
}

func TestReadMessageLengthEncodings(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 200, 0xffff, 0x10000, 70000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		c, _ := pipeConn(t, serverFrame(true, OpText, payload))
		op, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("length %d: %v", n, err)
		}
		if op != OpText || !bytes.Equal(got, payload) {
			t.Fatalf("length %d: got op %v and %d bytes", n, op, len(got))
		}
	}
}

func TestReadMessageReassemblesFragmentsAndAnswersPingInBetween(t *testing.T) {
	c, server := pipeConn(t,
		serverFrame(false, OpText, []byte("hello ")),
		serverFrame(true, OpPing, []byte("are you there")),
		serverFrame(false, OpContinuation, []byte("fragmented ")),
		serverFrame(true, OpPong, []byte("unsolicited")),
		serverFrame(true, OpContinuation, []byte("world")),
		serverFrame(true, OpBinary, []byte{1, 2, 3}),
	)
	pong := readClientFrameAsync(server)

	op, got, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if op != OpText || string(got) != "hello fragmented world" {
		t.Fatalf("got %v %q", op, got)
	}
	if f := <-pong; f.op != OpPong || !f.fin || string(f.payload) != "are you there" {
		t.Fatalf("answer to ping: %+v", f)
	}
	op, got, err = c.ReadMessage()
	if err != nil || op != OpBinary || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("second message: %v %v %v", op, got, err)
	}
}

func TestReadMessageReportsCloseAndEchoesCode(t *testing.T) {
	payload := binary.BigEndian.AppendUint16(nil, 1001)
	payload = append(payload, "going away"...)
	c, server := pipeConn(t, serverFrame(true, OpClose, payload))
	echo := readClientFrameAsync(server)

	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 || ce.Reason != "going away" {
		t.Fatalf("got %v, want CloseError 1001 \"going away\"", err)
	}
	if f := <-echo; f.op != OpClose || !bytes.Equal(f.payload, payload[:2]) {
		t.Fatalf("close answer: %+v", f)
	}
	if err := c.WriteText([]byte("late")); !errors.Is(err, errCloseSent) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestReadMessageRejectsProtocolViolations(t *testing.T) {
	masked := serverFrame(true, OpText, []byte("x"))
	masked[1] |= 0x80
	rsv := serverFrame(true, OpText, []byte("x"))
	rsv[0] |= 0x40
	tests := []struct {
		name  string
		bytes [][]byte
		want  error
	}{
		{"masked server frame", [][]byte{masked}, ErrProtocol},
		{"reserved bits", [][]byte{rsv}, ErrProtocol},
		{"continuation without message", [][]byte{serverFrame(true, OpContinuation, []byte("x"))}, ErrProtocol},
		{"new message inside fragments", [][]byte{serverFrame(false, OpText, []byte("a")), serverFrame(true, OpText, []byte("b"))}, ErrProtocol},
		{"fragmented control frame", [][]byte{serverFrame(false, OpPing, nil)}, ErrProtocol},
		{"long control frame", [][]byte{serverFrame(true, OpPing, make([]byte, 126))}, ErrProtocol},
		{"reserved data opcode", [][]byte{serverFrame(true, 0x3, nil)}, ErrProtocol},
		{"reserved control opcode", [][]byte{serverFrame(true, 0xB, nil)}, ErrProtocol},
		{"one-byte close payload", [][]byte{serverFrame(true, OpClose, []byte{3})}, ErrProtocol},
		{"too big", [][]byte{serverFrame(false, OpText, make([]byte, 60)), serverFrame(true, OpContinuation, make([]byte, 60))}, ErrMessageTooBig},
		{"truncated payload", [][]byte{serverFrame(true, OpText, []byte("abcdef"))[:4], nil}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, server := pipeConn(t, tt.bytes...)
			c.MaxMessageSize = 100
			go func() { _, _ = io.Copy(io.Discard, server) }()
			_, _, err := c.ReadMessage()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteTextMasksPayload(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 0xffff, 0x10000, 3*maskChunk + 7} {
		c, server := pipeConn(t)
		payload := bytes.Repeat([]byte("xyz"), n/3+1)[:n]
		got := readClientFrameAsync(server)
		if err := c.WriteText(payload); err != nil {
			t.Fatal(err)
		}
		if f := <-got; f.op != OpText || !f.fin || !bytes.Equal(f.payload, payload) {
			t.Fatalf("length %d: got op %v fin %v and %d bytes", n, f.op, f.fin, len(f.payload))
		}
	}
}
