package wsroomtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Client is a WebSocket client of a [Server]. A goroutine of its own reads
// every message into a queue, so the server never waits for the test, until
// [Client.StopReading]; the Expect methods take messages from that queue in
// the order they arrived. A Client is used by one goroutine at a time and
// is closed when the test ends.
type Client struct {
	t       TB
	path    string
	ws      *websocket.Conn
	timeout time.Duration

	ready  chan struct{} // holds a token once a message is queued or reading ends
	done   chan struct{} // closed when the reader has stopped
	gate   chan struct{} // closed to stop reading
	resume chan struct{} // closed to start reading a paused client

	mu      sync.Mutex
	queue   []message // received, not yet taken
	err     error     // why reading ended
	taken   []message // the last messages taken, for failure reports
	stopped bool
	resumed bool
}

type message struct {
	typ  websocket.MessageType
	data []byte
}

func (m message) String() string {
	if m.typ == websocket.MessageBinary {
		return fmt.Sprintf("binary %q", abbrev(string(m.data)))
	}
	return strconv.Quote(abbrev(string(m.data)))
}

func newClient(t TB, path string, ws *websocket.Conn, timeout time.Duration, paused bool) *Client {
	c := &Client{t: t, path: path, ws: ws, timeout: timeout,
		ready: make(chan struct{}, 1), done: make(chan struct{}), gate: make(chan struct{}), resume: make(chan struct{})}
	if !paused {
		c.resumed = true
		close(c.resume)
	}
	go c.read()
	t.Cleanup(c.stop)
	return c
}

// read queues every message until the connection ends or StopReading.
func (c *Client) read() {
	defer close(c.done)
	select {
	case <-c.resume:
	case <-c.gate:
		return
	}
	for {
		select {
		case <-c.gate:
			return
		default:
		}
		typ, data, err := c.ws.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			c.queue = append(c.queue, message{typ, data})
		}
		c.mu.Unlock()
		select {
		case c.ready <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// stop closes the connection at once and waits for the reader.
func (c *Client) stop() {
	c.Abort()
	c.StopReading()
	<-c.done
}

// Abort drops the connection without a close handshake, as a peer that
// vanished: the server sees its TCP connection end.
func (c *Client) Abort() { _ = c.ws.CloseNow() }

// Send writes a text message.
func (c *Client) Send(text string) {
	c.t.Helper()
	c.write(websocket.MessageText, []byte(text))
}

// SendBinary writes a binary message.
func (c *Client) SendBinary(data []byte) {
	c.t.Helper()
	c.write(websocket.MessageBinary, data)
}

func (c *Client) write(typ websocket.MessageType, data []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.ws.Write(ctx, typ, data); err != nil {
		c.t.Fatalf("wsroomtest: %s: send %s: %v", c.path, abbrev(string(data)), err)
	}
}

// next takes the next message, waiting at most d. ok is false when none
// came; ended is then why the connection ended, if it did.
func (c *Client) next(d time.Duration) (m message, ok bool, ended error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m = c.queue[0]
			c.queue = c.queue[1:]
			c.taken = append(c.taken, m)
			if len(c.taken) > 5 {
				c.taken = c.taken[1:]
			}
			c.mu.Unlock()
			return m, true, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return message{}, false, err
		}
		select {
		case <-c.ready:
		case <-timer.C:
			return message{}, false, nil
		}
	}
}

// history describes the last messages taken, for failure reports.
func (c *Client) history() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.taken) <= 1 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; before it: ")
	for i, m := range c.taken[:len(c.taken)-1] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.String())
	}
	return b.String()
}

// Next returns the next message, text or binary. It fails the test if
// none arrives within the timeout.
func (c *Client) Next() (websocket.MessageType, []byte) {
	c.t.Helper()
	m, ok, ended := c.next(c.timeout)
	if !ok {
		c.t.Fatalf("wsroomtest: %s: %s", c.path, missing("a message", c.timeout, ended))
	}
	return m.typ, m.data
}

// NextWithin returns the next message if one arrives within d, without
// failing the test: ok is false if none did, and err is then why the
// connection ended, or nil if it is still open. It is for tests that
// decide themselves what a missing message means, such as probing until
// delivery resumes.
func (c *Client) NextWithin(d time.Duration) (typ websocket.MessageType, data []byte, ok bool, err error) {
	m, ok, ended := c.next(d)
	return m.typ, m.data, ok, ended
}

// Err returns why the connection ended, or nil while it is open. It does
// not wait.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// TryNext returns the next message if one has arrived, without waiting.
func (c *Client) TryNext() (websocket.MessageType, []byte, bool) {
	m, ok, _ := c.next(0)
	return m.typ, m.data, ok
}

// ExpectMessage checks that the next message is the text want.
func (c *Client) ExpectMessage(want string) {
	c.t.Helper()
	c.ExpectMessages(want)
}

// ExpectMessages checks that the next messages are the texts want, in
// order.
func (c *Client) ExpectMessages(want ...string) {
	c.t.Helper()
	for i, w := range want {
		m, ok, ended := c.next(c.timeout)
		what := fmt.Sprintf("message %d of %d, %q", i+1, len(want), abbrev(w))
		switch {
		case !ok:
			c.t.Fatalf("wsroomtest: %s: %s", c.path, missing(what, c.timeout, ended))
		case m.typ != websocket.MessageText || string(m.data) != w:
			c.t.Fatalf("wsroomtest: %s: got %v, want %s%s", c.path, m, what, c.history())
		}
	}
}

// ExpectNoMessage checks that no message arrives within d.
func (c *Client) ExpectNoMessage(d time.Duration) {
	c.t.Helper()
	if m, ok, _ := c.next(d); ok {
		c.t.Fatalf("wsroomtest: %s: got %v, want no message within %v", c.path, m, d)
	}
}

// ExpectClose checks that the connection ends with a close frame of code,
// with no message before it.
func (c *Client) ExpectClose(code websocket.StatusCode) {
	c.t.Helper()
	m, ok, ended := c.next(c.timeout)
	switch {
	case ok:
		c.t.Fatalf("wsroomtest: %s: got %v, want the connection closed with %d", c.path, m, code)
	case ended == nil:
		c.t.Fatalf("wsroomtest: %s: still open after %v, want it closed with %d", c.path, c.timeout, code)
	case websocket.CloseStatus(ended) != code:
		c.t.Fatalf("wsroomtest: %s: ended with %v, want close %d", c.path, ended, code)
	}
}

// StopReading makes the client stop reading its socket, as a peer that
// stalled: the server's writes to it fill the kernel's buffers, and it no
// longer answers pings. Messages already received can still be expected.
// A read under way when it is called ends first.
func (c *Client) StopReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.stopped = true
		close(c.gate)
	}
}

// Resume starts reading a client dialled [Paused]. It does nothing to a
// client already reading.
func (c *Client) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.resumed {
		c.resumed = true
		close(c.resume)
	}
}

// WaitClosed waits until the connection has ended, leaving the messages
// that came before in the queue, and returns why it ended: an error from
// which websocket.CloseStatus gives the close code, when there was one.
// It fails the test if the connection is still open after the timeout.
func (c *Client) WaitClosed() error {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(c.timeout):
		c.t.Fatalf("wsroomtest: %s: still open after %v", c.path, c.timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection with 1000 and waits for the close
// handshake. Messages not yet taken are dropped. A connection the server
// already closed is no error.
func (c *Client) Close() {
	c.t.Helper()
	err := c.CloseWith(websocket.StatusNormalClosure, "")
	var ce websocket.CloseError
	if err != nil && !errors.As(err, &ce) && !strings.Contains(err.Error(), "closed") {
		c.t.Errorf("wsroomtest: %s: close: %v", c.path, err)
	}
}

// CloseWith closes the connection with code and reason, waits for the
// close handshake and returns nil if it completed: the server answered
// with its close frame and closed the connection.
func (c *Client) CloseWith(code websocket.StatusCode, reason string) error {
	return c.ws.Close(code, reason)
}

func missing(what string, d time.Duration, ended error) string {
	if ended != nil {
		return fmt.Sprintf("the connection ended (%v) before %s", ended, what)
	}
	return fmt.Sprintf("no %s within %v", what, d)
}

func abbrev(s string) string {
	if len(s) <= 60 {
		return s
	}
	return s[:45] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
