package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsroom/wsroom/bench/internal/wsclient"
)

var clients = []string{ClientWsroom, ClientGorilla}

// chatServer speaks the chat protocol over a rawServer. Every relayed line
// goes out in three fragments with a ping and an unsolicited pong between
// them. On the first message it receives it cuts the clients in cut, each
// in its way, before relaying it.
type chatServer struct {
	*rawServer
	cut map[string]func(p *rawPeer)

	mu      sync.Mutex
	members []*chatMember
	cutDone bool
	pings   atomic.Int64
	pongs   atomic.Int64
}

type chatMember struct {
	id   string
	peer *rawPeer
}

func startChatServer(t *testing.T, cut map[string]func(p *rawPeer)) *chatServer {
	s := &chatServer{cut: cut}
	s.rawServer = startRawServer(t, 0, s.serve)
	return s
}

func (s *chatServer) serve(p *rawPeer) {
	id := strings.TrimPrefix(p.path, "/ws/")
	m := &chatMember{id: id, peer: p}
	s.mu.Lock()
	s.members = append(s.members, m)
	s.broadcastLocked(id + " 进入了聊天室")
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.remove(m) {
			s.broadcastLocked(id + " 离开了聊天室")
		}
	}()
	for {
		data, err := p.readMessage(&s.pongs)
		if err != nil {
			return
		}
		s.mu.Lock()
		if !s.cutDone {
			s.cutDone = true
			for _, other := range append([]*chatMember(nil), s.members...) {
				if how, ok := s.cut[other.id]; ok {
					s.remove(other)
					how(other.peer)
				}
			}
		}
		s.broadcastLocked(id + " 发送消息:" + string(data))
		_ = p.write(frame(true, opText, []byte("服务端回复"+id+":你发送的信息是:"+string(data))))
		s.mu.Unlock()
	}
}

func (s *chatServer) remove(m *chatMember) bool {
	for i, x := range s.members {
		if x == m {
			s.members = append(s.members[:i], s.members[i+1:]...)
			return true
		}
	}
	return false
}

// broadcastLocked sends line to every member in three fragments, with a
// ping after the first and an unsolicited pong after the second.
func (s *chatServer) broadcastLocked(line string) {
	b := []byte(line)
	a, c := len(b)/3, 2*len(b)/3
	for _, m := range s.members {
		if m.peer.write(
			frame(false, opText, b[:a]),
			frame(true, opPing, []byte("ping")),
			frame(false, opCont, b[a:c]),
			frame(true, opPong, []byte("unsolicited")),
			frame(true, opCont, b[c:]),
		) == nil {
			s.pings.Add(1)
		}
	}
}

// TestRunCountsServerDisconnectsByKind cuts three readers in the three ways
// a server can (close frame, FIN, reset) while relaying fragmented messages
// with control frames between the fragments, and checks the accounting of
// both clients.
func TestRunCountsServerDisconnectsByKind(t *testing.T) {
	for _, client := range clients {
		t.Run(client, func(t *testing.T) {
			srv := startChatServer(t, map[string]func(p *rawPeer){
				"c2": func(p *rawPeer) {
					_ = p.write(closeFrame(1013))
					_ = p.nc.Close()
				},
				"c3": func(p *rawPeer) { _ = p.nc.Close() },
				"c4": (*rawPeer).reset,
			})
			// The cut readers' share never arrives: the drain ends after a
			// second without deliveries.
			cfg := Config{URL: srv.url(), Client: client, Clients: 8, Senders: 1, Messages: 30, Size: 100,
				DrainTimeout: time.Second, Timeout: 20 * time.Second}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Client != client || res.Mode != ModeChat {
				t.Errorf("client %q mode %q", res.Client, res.Mode)
			}
			if !res.JoinSettled || res.Connected != 8 || res.TimedOut || res.Stalled {
				t.Fatalf("settled %v connected %d timed out %v stalled %v: %q", res.JoinSettled, res.Connected, res.TimedOut, res.Stalled, res.Errors)
			}
			// The five readers left got every message once, in order.
			if res.Sent != 30 || res.Expected != 30*8 || res.Received != 30*5 || res.Lost != 30*3 {
				t.Errorf("sent %d expected %d received %d lost %d", res.Sent, res.Expected, res.Received, res.Lost)
			}
			if res.Duplicate != 0 || res.OutOfOrder != 0 || res.Replies != 30 || res.ReplyBeforeCopy != 0 {
				t.Errorf("dup %d order %d replies %d before copy %d", res.Duplicate, res.OutOfOrder, res.Replies, res.ReplyBeforeCopy)
			}
			want := map[int]int64{1013: 1}
			if res.Disconnected != 3 || !maps.Equal(res.ClosedByServer, want) || res.ResetByServer != 2 || res.ClientFailures != 0 {
				t.Errorf("disconnected %d closed %v reset %d failures %d, want 3, %v, 2, 0: %q",
					res.Disconnected, res.ClosedByServer, res.ResetByServer, res.ClientFailures, want, res.Errors)
			}
			if srv.pongs.Load() == 0 {
				t.Errorf("no pong for %d pings", srv.pings.Load())
			}
		})
	}
}

func TestClientsReassembleAndReportTheEnd(t *testing.T) {
	tests := []struct {
		name     string
		end      func(p *rawPeer)
		wantKind endKind
		wantCode int
	}{
		{"close frame", func(p *rawPeer) { _ = p.write(closeFrame(1008)) }, endClosed, 1008},
		{"empty close frame", func(p *rawPeer) { _ = p.write(frame(true, opClose, nil)) }, endClosed, 1005},
		{"eof", func(p *rawPeer) { _ = p.nc.Close() }, endReset, 0},
		{"eof inside a frame", func(p *rawPeer) {
			_ = p.write(frame(true, opText, []byte("truncated"))[:5])
			_ = p.nc.Close()
		}, endReset, 0},
		{"reset", (*rawPeer).reset, endReset, 0},
		{"protocol error", func(p *rawPeer) { _ = p.write(frame(true, opCont, []byte("x"))) }, endFailed, 0},
	}
	for _, client := range clients {
		for _, tt := range tests {
			t.Run(client+"/"+tt.name, func(t *testing.T) {
				served := make(chan struct{})
				srv := startRawServer(t, 0, func(p *rawPeer) {
					defer close(served)
					_ = p.write(
						frame(false, opText, []byte("hel")),
						frame(true, opPing, []byte("p")),
						frame(true, opCont, []byte("lo")),
					)
					// The pong comes back before the client reads on.
					if p.awaitPong() != nil {
						return
					}
					tt.end(p)
					// Drain until the client hangs up, so that a close
					// does not turn into a reset for unread data.
					_, _ = io.Copy(io.Discard, p.br)
				})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, err := dialWS(ctx, client, srv.url()+"/ws/c0", (&net.Dialer{}).DialContext, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				text, msg, err := c.ReadMessage()
				if err != nil || !text || string(msg) != "hello" {
					t.Fatalf("got %v %q %v", text, msg, err)
				}
				_, _, err = c.ReadMessage()
				kind, code := classifyEnd(err)
				if kind != tt.wantKind || code != tt.wantCode {
					t.Fatalf("%v: kind %d code %d, want %d %d", err, kind, code, tt.wantKind, tt.wantCode)
				}
				_ = c.CloseNow()
				<-served
			})
		}
	}
}

func TestClassifyEnd(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: fmt.Errorf("wrapped: %w", syscall.ECONNRESET)}
	tests := []struct {
		err  error
		kind endKind
		code int
	}{
		{&wsclient.CloseError{Code: 1013}, endClosed, 1013},
		{fmt.Errorf("read: %w", &wsclient.CloseError{Code: 1005}), endClosed, 1005},
		{&websocket.CloseError{Code: 1001}, endClosed, 1001},
		{&websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: "unexpected EOF"}, endReset, 0},
		{io.EOF, endReset, 0},
		{io.ErrUnexpectedEOF, endReset, 0},
		{reset, endReset, 0},
		{wsclient.ErrMessageTooBig, endFailed, 0},
		{errors.New("something else"), endFailed, 0},
	}
	for _, tt := range tests {
		if kind, code := classifyEnd(tt.err); kind != tt.kind || code != tt.code {
			t.Errorf("classifyEnd(%v) = %d %d, want %d %d", tt.err, kind, code, tt.kind, tt.code)
		}
	}
}

// TestSeveralURLsReportLatencyPerURL pins the per-URL quantiles: one per
// URL of -url, in its order, each from the readers of that URL only, and
// none with a single URL.
func TestSeveralURLsReportLatencyPerURL(t *testing.T) {
	srv := startChatServer(t, nil)
	for _, urls := range []int{1, 2} {
		cfg := Config{URL: strings.TrimSuffix(strings.Repeat(srv.url()+",", urls), ","), Clients: 6, Senders: 1, Messages: 20,
			Timeout: 20 * time.Second}
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != 20*6 || res.Lost != 0 {
			t.Fatalf("%d URLs: received %d lost %d: %q", urls, res.Received, res.Lost, res.Errors)
		}
		if urls == 1 {
			if res.LatencyP50ByURL != nil || res.LatencyP99ByURL != nil {
				t.Errorf("one URL: per-URL quantiles %v %v, want none", res.LatencyP50ByURL, res.LatencyP99ByURL)
			}
			continue
		}
		if len(res.LatencyP50ByURL) != urls || len(res.LatencyP99ByURL) != urls {
			t.Fatalf("%d URLs: per-URL quantiles %v %v", urls, res.LatencyP50ByURL, res.LatencyP99ByURL)
		}
		for i := range urls {
			if p50, p99 := res.LatencyP50ByURL[i], res.LatencyP99ByURL[i]; p50 <= 0 || p50 > p99 || p99 > res.LatencyMax {
				t.Errorf("URL %d: p50 %v p99 %v, want 0 < p50 <= p99 <= max %v", i, p50, p99, res.LatencyMax)
			}
		}
	}
}
