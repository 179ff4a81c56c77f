package load

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// acceptedPair returns a client connection with a silent client's small
// receive buffer and the server's end of it.
func acceptedPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := dialerFor(Config{}, 0, true).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		_ = nc.Close()
		_ = sc.Close()
	})
	return nc.(*net.TCPConn), sc.(*net.TCPConn)
}

// fillUntilBlocked writes to c until a write makes no progress for 100 ms:
// the peer's receive buffer and c's send buffer are full.
func fillUntilBlocked(t *testing.T, c net.Conn) {
	t.Helper()
	chunk := make([]byte, 64<<10)
	for {
		if err := c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(chunk); errors.Is(err, os.ErrDeadlineExceeded) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCutWatchSeesHowTheServerEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, server *net.TCPConn)
		how  string
		// What the client's own socket says afterwards.
		clientState uint8
	}{
		{"close", func(t *testing.T, s *net.TCPConn) { _ = s.Close() }, cutFIN, tcpCloseWait},
		{"close behind unsent data", func(t *testing.T, s *net.TCPConn) {
			fillUntilBlocked(t, s)
			_ = s.Close()
		}, cutFIN, tcpEstablished},
		{"reset", func(t *testing.T, s *net.TCPConn) {
			_ = s.SetLinger(0)
			_ = s.Close()
		}, cutRST, tcpClose},
		{"reset behind unsent data", func(t *testing.T, s *net.TCPConn) {
			fillUntilBlocked(t, s)
			_ = s.SetLinger(0)
			_ = s.Close()
		}, cutRST, tcpClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := acceptedPair(t)
			probe, err := newTCPProbe()
			if err != nil {
				t.Fatal(err)
			}
			defer probe.Close()
			if res, err := probe.look(client); err != nil || res != (probeResult{local: tcpEstablished, peer: tcpEstablished, peerExists: true}) {
				t.Fatalf("before: %+v %v", res, err)
			}

			var errs errorLog
			w, err := newCutWatch(func() bool { return false }, &errs)
			if err != nil {
				t.Fatal(err)
			}
			w.add("c1", client)
			start := time.Now()
			tt.end(t, server)
			select {
			case <-w.allCut:
			case <-time.After(10 * time.Second):
				t.Fatal("no cut seen within 10s")
			}
			sum := w.finish(start)
			if sum.watched != 1 || sum.cut != 1 || sum.by != tt.how || sum.allCutMs < 0 || sum.allCutMs != sum.longest {
				t.Errorf("summary %+v, want one %s cut", sum, tt.how)
			}
			if n, msgs := errs.snapshot(); n != 0 {
				t.Errorf("errors: %q", msgs)
			}
			if res, err := probe.look(client); err != nil || res.local != tt.clientState {
				t.Errorf("client socket afterwards: %+v %v, want state %d", res, err, tt.clientState)
			}
		})
	}
}

func TestCutWatchReportsNeverWhenNothingIsCut(t *testing.T) {
	client, _ := acceptedPair(t)
	var errs errorLog
	w, err := newCutWatch(func() bool { return false }, &errs)
	if err != nil {
		t.Fatal(err)
	}
	w.add("c1", client)
	sum := w.finish(time.Now())
	if sum != (cutSummary{watched: 1, longest: -1, allCutMs: -1}) {
		t.Errorf("summary %+v", sum)
	}
}

func TestCutWatchTakesTheReadersWord(t *testing.T) {
	client, _ := acceptedPair(t)
	var errs errorLog
	w, err := newCutWatch(func() bool { return false }, &errs)
	if err != nil {
		t.Fatal(err)
	}
	wc := w.add("c1", client)
	start := time.Now().Add(-time.Second)
	w.ended(wc, &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)})
	sum := w.finish(start)
	if sum.cut != 1 || sum.by != cutRST || sum.longest < 1000 {
		t.Errorf("summary %+v, want one rst cut after 1s", sum)
	}
}

func TestProbeResultCut(t *testing.T) {
	tests := []struct {
		res       probeResult
		peerKnown bool
		want      string
	}{
		{probeResult{local: tcpEstablished, peer: tcpEstablished, peerExists: true}, true, ""},
		{probeResult{local: tcpCloseWait, peer: tcpFinWait2, peerExists: true}, true, cutFIN},
		{probeResult{local: tcpClose}, false, cutRST},
		{probeResult{local: tcpEstablished, peer: tcpFinWait1, peerExists: true}, true, cutFIN},
		{probeResult{local: tcpEstablished}, true, cutRST},
		{probeResult{local: tcpEstablished, peer: tcpListen, peerExists: true}, true, cutRST},
		// A server's end never seen (elsewhere): only the client's word.
		{probeResult{local: tcpEstablished}, false, ""},
	}
	for _, tt := range tests {
		if got := tt.res.cut(tt.peerKnown); got != tt.want {
			t.Errorf("%+v.cut(%v) = %q, want %q", tt.res, tt.peerKnown, got, tt.want)
		}
	}
}
