package load

import (
	"context"
	"maps"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

const echoPrefix = "小菠萝收到的消息是: "

// startEchoServer serves the echo demo's protocol on any path: each text
// message comes back with echoPrefix. A message over readLimit is answered
// with close 1009; a reply not written within writeTimeout (if positive)
// makes the server close the connection. sndbuf is the accepted sockets'
// SO_SNDBUF (0: the kernel's).
func startEchoServer(t *testing.T, readLimit int, writeTimeout time.Duration, sndbuf int) *rawServer {
	return startRawServer(t, sndbuf, func(p *rawPeer) {
		for {
			msg, err := p.readMessage(nil)
			if err != nil {
				return
			}
			if len(msg) > readLimit {
				_ = p.write(closeFrame(1009))
				// Wait for the client's answer, so that the close does not
				// turn into a reset.
				for err == nil {
					_, err = p.readMessage(nil)
				}
				return
			}
			if writeTimeout > 0 {
				_ = p.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			if p.write(frame(true, opText, append([]byte(echoPrefix), msg...))) != nil {
				return // the deferred close queues a FIN behind what is unsent
			}
		}
	})
}

func TestEchoRunGetsEveryReply(t *testing.T) {
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			srv := startEchoServer(t, 1<<20, 0, 0)
			cfg := Config{Mode: ModeEcho, Client: client, URL: srv.url(), Clients: 3, Size: 300 << 10,
				ReadRate: 8 << 20, ServerPID: os.Getpid(), Timeout: 20 * time.Second}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != ModeEcho || res.Client != client || res.Senders != 3 || res.Messages != 1 || res.ReceiveBuffer != 128<<10 {
				t.Errorf("header: %+v", res)
			}
			if res.Connected != 3 || res.Sent != 3 || deref(res.FullReplies) != 3 || res.Replies != 3 || res.TimedOut || res.ErrorCount != 0 {
				t.Fatalf("connected %d sent %d full %v timed out %v errors %q", res.Connected, res.Sent, deref(res.FullReplies), res.TimedOut, res.Errors)
			}
			if deref(res.ReadBytes) < 3*(300<<10) {
				t.Errorf("read %v bytes, want at least the three replies", deref(res.ReadBytes))
			}
			if res.Disconnected != 0 || len(res.ClosedByServer) != 0 || deref(res.ServerCut) != 0 || deref(res.ServerCutAfter) != -1 {
				t.Errorf("disconnected %d closed %v cut %v after %v", res.Disconnected, res.ClosedByServer, deref(res.ServerCut), deref(res.ServerCutAfter))
			}
			if res.ServerRSSPeak == nil || *res.ServerRSSPeak < *res.ServerRSSBefore || res.SendDuration <= 0 {
				t.Errorf("rss %v..%v send %v", res.ServerRSSBefore, res.ServerRSSPeak, res.SendDuration)
			}
		})
	}
}

func TestEchoRunCountsCloseCodes(t *testing.T) {
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			srv := startEchoServer(t, 1000, 0, 0)
			cfg := Config{Mode: ModeEcho, Client: client, URL: srv.url(), Clients: 3, Size: 100 << 10,
				ReadRate: 8 << 20, Timeout: 20 * time.Second}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int]int64{1009: 3}
			if deref(res.FullReplies) != 0 || res.Disconnected != 3 || !maps.Equal(res.ClosedByServer, want) || res.ResetByServer != 0 {
				t.Errorf("full %v disconnected %d closed %v reset %d, want 0 3 %v 0: %q",
					deref(res.FullReplies), res.Disconnected, res.ClosedByServer, res.ResetByServer, want, res.Errors)
			}
			if deref(res.ServerCut) != 3 || deref(res.ServerCutBy) != cutFIN || res.TimedOut {
				t.Errorf("cut %v by %q timed out %v", deref(res.ServerCut), deref(res.ServerCutBy), res.TimedOut)
			}
		})
	}
}

// TestEchoRunSeesCutsBehindTheReply: the server gives up on replies the
// clients read too slowly and closes; the FIN waits behind reply bytes
// the clients have not read, so only the TCP probe can tell.
func TestEchoRunSeesCutsBehindTheReply(t *testing.T) {
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			srv := startEchoServer(t, 2<<20, 200*time.Millisecond, 32<<10)
			cfg := Config{Mode: ModeEcho, Client: client, URL: srv.url(), Clients: 3, Size: 1 << 20,
				ReadRate: 16 << 10, Timeout: 1500 * time.Millisecond}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !res.TimedOut || deref(res.FullReplies) != 0 || res.Disconnected != 0 {
				t.Errorf("timed out %v full %v disconnected %d: %q", res.TimedOut, deref(res.FullReplies), res.Disconnected, res.Errors)
			}
			if deref(res.ServerCut) != 3 || deref(res.ServerCutBy) != cutFIN || deref(res.ServerCutAfter) < 200 {
				t.Errorf("cut %v by %q after %v ms, want 3 fin after 200 ms: %q", deref(res.ServerCut), deref(res.ServerCutBy), deref(res.ServerCutAfter), res.Errors)
			}
			// About 16 KiB/s for 1.5 s each, well short of what is queued
			// before the FIN (the server's 64 KiB send buffer and the
			// client's 32 KiB receive buffer).
			if n := deref(res.ReadBytes); n < 3*15e3 || n > 3*40e3 {
				t.Errorf("read %v bytes", n)
			}
		})
	}
}

func TestThrottledConnKeepsItsRate(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	const total, rate = 64 << 10, 256 << 10
	go func() { _, _ = b.Write(make([]byte, total)) }()
	var counter atomic.Int64
	tc := newThrottledConn(a, rate, &counter)
	start := time.Now()
	buf := make([]byte, 4096)
	for got := 0; got < total; {
		n, err := tc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	// The first burst is free; the rest comes at the rate.
	if min := time.Duration(float64(total-int(tc.burst)) / rate * float64(time.Second)); time.Since(start) < min*9/10 {
		t.Errorf("read %d bytes in %v, want at least %v", total, time.Since(start), min)
	}
	if counter.Load() != total {
		t.Errorf("counted %d", counter.Load())
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
