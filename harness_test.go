package wsroom

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/wsroomtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait for an expected event. It is generous on
// purpose: the tests run under -race on small, busy machines, and a wait
// only takes this long when the test is failing anyway.
const waitTimeout = 20 * time.Second

// harness is one ConnectionManager behind a real loopback HTTP server.
type harness struct {
	t   *testing.T
	m   *ConnectionManager
	srv *httptest.Server
	ws  *wsroomtest.Server // the clients' view of srv

	// conns receives each connection the default handler registered, in
	// the order Connect returned.
	conns chan *Conn
	// connectErrs receives each error Connect returned.
	connectErrs chan error
	// readErrs receives the error that ended each default handler's read
	// loop.
	readErrs chan connErr

	onMessage func(c *Conn, msg Message)
	handlers  sync.WaitGroup
}

type connErr struct {
	c   *Conn
	err error
}

type harnessConfig struct {
	opts []Option
	// handler replaces the default handler, connectAndRead.
	handler func(h *harness, w http.ResponseWriter, r *http.Request)
	// wrap wraps the handler, for Middleware.
	wrap func(m *ConnectionManager, next http.Handler) http.Handler
	// onMessage runs on the default handler's read loop for each message.
	onMessage func(h *harness, c *Conn, msg Message)
	// smallSendBuffers fixes the server's socket send buffers, so that a
	// peer that stops reading stalls the writer after a few hundred
	// kilobytes.
	smallSendBuffers bool
	// tls serves over TLS (httptest's certificate).
	tls bool
}

func newHarness(t *testing.T, opts ...Option) *harness {
	return startHarness(t, harnessConfig{opts: opts})
}

func startHarness(t *testing.T, cfg harnessConfig) *harness {
	t.Helper()
	m, err := New(cfg.opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &harness{
		t:           t,
		m:           m,
		conns:       make(chan *Conn, 1024),
		connectErrs: make(chan error, 1024),
		readErrs:    make(chan connErr, 1024),
	}
	if cfg.onMessage != nil {
		h.onMessage = func(c *Conn, msg Message) { cfg.onMessage(h, c, msg) }
	}
	handle := cfg.handler
	if handle == nil {
		handle = (*harness).connectAndRead
	}
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.handlers.Add(1)
		defer h.handlers.Done()
		handle(h, w, r)
	})
	if cfg.wrap != nil {
		handler = cfg.wrap(m, handler)
	}
	h.srv = httptest.NewUnstartedServer(handler)
	if cfg.smallSendBuffers {
		h.srv.Listener = smallBufferListener{h.srv.Listener}
	}
	if cfg.tls {
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	h.ws = wsroomtest.Wrap(t, h.srv)
	h.ws.Timeout = waitTimeout
	t.Cleanup(h.close)
	return h
}

// close shuts the manager down and waits for every handler to return.
func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.m.Shutdown(ctx); err != nil {
		h.t.Errorf("Shutdown: %v", err)
	}
	h.srv.Close()
	done := make(chan struct{})
	go func() {
		h.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		h.t.Errorf("handlers still running %v after Shutdown", waitTimeout)
	}
}

// connectAndRead is the tutorial's handler: Connect, then read until the
// connection ends. The query may name rooms to join (room=a&room=b) and the
// connection's ID (id=x).
func (h *harness) connectAndRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := h.m.Connect(w, r, &ConnectOptions{ID: q.Get("id")})
	if err != nil {
		h.connectErrs <- err
		return
	}
	for _, room := range q["room"] {
		if err := h.m.Join(context.Background(), c, room); err != nil {
			h.connectErrs <- err
			return
		}
	}
	h.conns <- c
	for {
		msg, err := c.Read(context.Background())
		if err != nil {
			h.readErrs <- connErr{c, err}
			return
		}
		if h.onMessage != nil {
			h.onMessage(c, msg)
		}
	}
}

func (h *harness) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}

// nextConn returns the next connection the default handler registered.
func (h *harness) nextConn() *Conn {
	h.t.Helper()
	select {
	case c := <-h.conns:
		return c
	case err := <-h.connectErrs:
		h.t.Fatalf("Connect: %v", err)
	case <-time.After(waitTimeout):
		h.t.Fatalf("no connection registered within %v", waitTimeout)
	}
	return nil
}

// dial opens a client connection and returns it with its server side,
// registered and in its rooms. The client does not read until start.
func (h *harness) dial(query string, opts ...wsroomtest.DialOption) (*client, *Conn) {
	h.t.Helper()
	cl := h.dialOnly(query, opts...)
	return cl, h.nextConn()
}

// dialOnly opens a client connection, paused, without waiting for the
// server side: for handlers that do not register it.
func (h *harness) dialOnly(query string, opts ...wsroomtest.DialOption) *client {
	h.t.Helper()
	path := "/"
	if query != "" {
		path += "?" + query
	}
	return &client{t: h.t, wc: h.ws.Dial(path, append([]wsroomtest.DialOption{wsroomtest.Paused()}, opts...)...)}
}

// dialStalling opens a client connection whose socket receive buffer is
// fixed (no autotuning) and that does not read until start: its server side
// stalls after a few hundred kilobytes. Buffers are never made smaller than
// the loopback MSS (64 KiB), below which TCP falls back to zero-window
// probes and a peer that reads again crawls.
func (h *harness) dialStalling(query string) (*client, *Conn) {
	h.t.Helper()
	return h.dial(query, wsroomtest.ReceiveBuffer(socketBuffer))
}

// dialRaw opens a TCP connection, performs the WebSocket handshake by hand
// and then never reads again: a peer that neither drains its socket nor
// answers pings or the close handshake.
func (h *harness) dialRaw(query string) (net.Conn, *Conn) {
	h.t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		h.t.Fatalf("SetReadBuffer: %v", err)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	path := "/"
	if query != "" {
		path += "?" + query
	}
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		path, h.srv.Listener.Addr(), base64.StdEncoding.EncodeToString(key[:]))
	if err != nil {
		h.t.Fatalf("write handshake: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatalf("read handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		h.t.Fatalf("handshake: HTTP %d, want 101", resp.StatusCode)
	}
	return conn, h.nextConn()
}

// socketBuffer is the size of the socket buffers the stalling tests fix.
const socketBuffer = 128 << 10

// smallBufferListener fixes the send buffer of every accepted socket, so
// that it does not grow to megabytes for a peer that stopped reading.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(socketBuffer)
	}
	return conn, err
}

// client is a wsroomtest client dialled paused: it reads nothing until
// start, and then keeps every message it took, in order, for the tests to
// wait on.
type client struct {
	t  *testing.T
	wc *wsroomtest.Client

	msgs []clientMsg // every message taken so far
	err  error       // why the connection ended, once it has
}

type clientMsg struct {
	typ  websocket.MessageType
	data string
}

// start begins reading; it may be called more than once.
func (cl *client) start() *client {
	cl.wc.Resume()
	return cl
}

// waitMessages waits until n messages have arrived in all and returns
// them. It fails, saying what arrived, if they do not within the
// wsroomtest timeout.
func (cl *client) waitMessages(n int) []clientMsg {
	cl.t.Helper()
	for len(cl.msgs) < n {
		typ, data := cl.wc.Next()
		cl.msgs = append(cl.msgs, clientMsg{typ, string(data)})
	}
	return cl.messages()
}

// waitTexts waits for n messages and returns their payloads.
func (cl *client) waitTexts(n int) []string {
	cl.t.Helper()
	cl.waitMessages(n)
	return cl.texts()
}

// waitEnd waits until the connection has ended and returns why, taking the
// messages that came before it.
func (cl *client) waitEnd() error {
	cl.t.Helper()
	cl.err = cl.wc.WaitClosed()
	for {
		typ, data, ok := cl.wc.TryNext()
		if !ok {
			return cl.err
		}
		cl.msgs = append(cl.msgs, clientMsg{typ, string(data)})
	}
}

func (cl *client) messages() []clientMsg { return append([]clientMsg(nil), cl.msgs...) }

func (cl *client) texts() []string {
	texts := make([]string, len(cl.msgs))
	for i, m := range cl.msgs {
		texts[i] = m.data
	}
	return texts
}

// send writes a text message from the client.
func (cl *client) send(s string) { cl.wc.Send(s) }

// eventually polls cond until it holds. It is for state that has no event
// to wait on, such as counters.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitDone waits for c to be fully closed.
func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatalf("%v not closed within %v", c, waitTimeout)
	}
}

// queueLen returns how many messages wait in c's queue.
func queueLen(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.n
}

// wantClose checks that err is a close frame with code and reason.
func wantClose(t *testing.T, err error, code websocket.StatusCode, reason string) {
	t.Helper()
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("connection ended with %v, want close %d %q", err, code, reason)
	}
	if ce.Code != code || ce.Reason != reason {
		t.Fatalf("close %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
