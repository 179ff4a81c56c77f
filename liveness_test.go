package wsroom

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsroom/wsroom/internal/rawws"
)

// Liveness by progress, measured against the real kernel's buffers: no
// test here fixes the server's socket buffers.

// slowReader reads from r at about rate bytes per second, in reads of at
// most chunk bytes: a peer that is slow but keeps making progress.
type slowReader struct {
	r     io.Reader
	rate  int
	chunk int
	start time.Time
	done  int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.start.IsZero() {
		s.start = time.Now()
	}
	// Pace the reads: the bytes read so far may not run ahead of rate.
	if ahead := time.Duration(float64(s.done)/float64(s.rate)*float64(time.Second)) - time.Since(s.start); ahead > 0 {
		time.Sleep(ahead)
	}
	n, err := s.r.Read(p[:min(len(p), s.chunk)])
	s.done += n
	return n, err
}

// readMessage reassembles the next data message from frames, answering
// nothing and counting pongs.
func readMessage(r io.Reader, pongs *atomic.Int32) (rawws.Frame, []byte, error) {
	var data []byte
	var first rawws.Frame
	for {
		f, err := rawws.Decode(r)
		if err != nil {
			return first, data, err
		}
		switch f.Opcode {
		case rawws.OpPong:
			pongs.Add(1)
			continue
		case rawws.OpPing:
			continue
		case rawws.OpText, rawws.OpBinary:
			first = f
		}
		if f.Opcode == rawws.OpClose {
			return f, data, errors.New("close frame")
		}
		data = append(data, f.Payload...)
		if f.Fin {
			return first, data, nil
		}
	}
}

// dialTCP opens a TCP connection whose receive buffer is small and fixed,
// as a peer on a slow link or a busy client has. It is not made smaller
// than the loopback MSS (64 KiB), below which TCP falls back to zero-window
// probes and a peer that reads again crawls.
func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := nc.(*net.TCPConn)
	if err := tc.SetReadBuffer(socketBuffer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	return tc
}

// transports are the two a liveness test runs over.
var transports = []struct {
	name string
	tls  bool
}{{"tcp", false}, {"tls", true}}

func TestSlowButProgressingReaderIsNeverCut(t *testing.T) {
	for _, tr := range transports {
		useTLS := tr.tls
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			// Timeouts far below the 13 s the message takes to read:
			// only the peer's progress keeps it. The write timeout
			// leaves room for the zero-window probes of loopback,
			// whose 64 KiB segments make a slow reader's window
			// reopen in bursts, seconds apart at worst.
			h := startHarness(t, harnessConfig{
				tls:  useTLS,
				opts: []Option{WithPing(200*time.Millisecond, time.Second), WithWriteTimeout(2 * time.Second)},
			})
			tc := dialTCP(t, h.srv.Listener.Addr().String())
			var nc net.Conn = tc
			if useTLS {
				nc = tls.Client(tc, &tls.Config{InsecureSkipVerify: true})
			}
			rc, _, err := rawws.Client(nc, h.srv.Listener.Addr().String(), "/", nil)
			if err != nil {
				t.Fatal(err)
			}
			c := h.nextConn()
			big := strings.Repeat("x", 2<<20)
			if err := h.m.SendPersonal(ctxTimeout(t), c, Text(big)); err != nil {
				t.Fatal(err)
			}
			// The client pings every 200 ms too: its pongs must not
			// wait for the whole message to be written.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if rc.WriteFrame(rawws.Frame{Fin: true, Opcode: rawws.OpPing, Payload: []byte("p")}) != nil {
							return
						}
					}
				}
			}()
			var pongs atomic.Int32
			start := time.Now()
			f, data, err := readMessage(&slowReader{r: nc, rate: 160 << 10, chunk: 16 << 10}, &pongs)
			if err != nil || f.Opcode != rawws.OpText || string(data) != big {
				t.Fatalf("after %v: %v, opcode %d, %d of %d bytes; want the whole message (stats %+v)", time.Since(start), err, f.Opcode, len(data), len(big), h.m.Stats())
			}
			t.Logf("read 2 MiB in %v, %d pongs meanwhile", time.Since(start).Round(time.Millisecond), pongs.Load())
			if pongs.Load() == 0 {
				t.Fatal("no pong came between the message's fragments")
			}
			if s := h.m.Stats(); s.PingTimeouts != 0 || s.WriteTimeouts != 0 || s.Connections != 1 {
				t.Fatalf("stats %+v: the slow reader was cut", s)
			}
		})
	}
}

func TestStalledReaderIsCutWithinTheWriteTimeout(t *testing.T) {
	const writeTimeout = 2 * time.Second
	for _, tr := range transports {
		useTLS := tr.tls
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			h := startHarness(t, harnessConfig{tls: useTLS, opts: []Option{WithWriteTimeout(writeTimeout), WithPing(0, 0)}})
			reader, _ := h.dial("room=r")
			reader.start()
			// A client that never reads, with the kernel's own buffers.
			_, c := h.dial("room=r")
			line := Text(strings.Repeat("s", 1024))
			sent := 0
			start := time.Now()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
		stream:
			for time.Since(start) < writeTimeout+3*time.Second {
				select {
				case <-c.Done():
					break stream
				case <-tick.C:
				}
				for range 2 { // about 2,000 messages a second, as S4 sends
					if err := h.m.Broadcast(context.Background(), "r", line); err != nil {
						t.Fatal(err)
					}
					sent++
				}
			}
			cut := time.Since(start)
			select {
			case <-c.Done():
			default:
				t.Fatalf("the stalled client is still connected after %v", cut)
			}
			t.Logf("stalled client cut after %v (write timeout %v), %d messages sent", cut.Round(time.Millisecond), writeTimeout, sent)
			if cut < writeTimeout || cut > writeTimeout+time.Second+200*time.Millisecond {
				t.Fatalf("cut after %v, want within the write timeout %v plus 1 s of the stall", cut, writeTimeout)
			}
			if s := h.m.Stats(); s.WriteTimeouts != 1 || s.Evicted != 0 {
				t.Fatalf("stats %+v, want one write timeout and no eviction", s)
			}
			// The reader missed nothing.
			if got := reader.waitTexts(sent); len(got) != sent {
				t.Fatalf("reader got %d of %d", len(got), sent)
			}
		})
	}
}

func TestPeerThatAnswersNoPingAndReadsNothingIsCut(t *testing.T) {
	h := newHarness(t, WithPing(100*time.Millisecond, 200*time.Millisecond))
	// The raw client neither reads nor answers: the ping is taken by its
	// kernel, and then nothing moves.
	_, c := h.dialRawWS("room=r")
	start := time.Now()
	waitDone(t, c)
	if d := time.Since(start); d > 100*time.Millisecond+200*time.Millisecond+promptly {
		t.Fatalf("cut after %v", d)
	}
	if s := h.m.Stats(); s.PingTimeouts != 1 || len(h.m.Members("r")) != 0 {
		t.Fatalf("stats %+v, want one ping timeout and an empty room", s)
	}
}
