package nodetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom/wsroomtest"
)

// recentLimit is how many of the messages a client took [Client] keeps for
// failure messages.
const recentLimit = 8

// Client is a WebSocket client of a [Node], on a [wsroomtest.Client],
// which reads every message into a queue so that the server never waits
// for the test; [Client.Next] and the methods built on it take messages
// from that queue in the order they arrived. A Client is used by one
// goroutine at a time.
type Client struct {
	// ID is the connection ID the client was dialled with.
	ID string

	wc     *wsroomtest.Client
	taken  int      // messages taken so far
	recent []string // the last messages taken
}

// take returns the next message if one arrives within d. ok is false if
// none did; ended is then why the connection ended, if it did.
func (c *Client) take(d time.Duration) (msg string, ok bool, ended error) {
	_, data, ok, ended := c.wc.NextWithin(d)
	if !ok {
		return "", false, ended
	}
	msg = string(data)
	c.taken++
	c.recent = append(c.recent, msg)
	if len(c.recent) > recentLimit {
		c.recent = c.recent[1:]
	}
	return msg, true, nil
}

// history describes what the client has taken so far, for a failure.
func (c *Client) history() string {
	if c.taken == 0 {
		return "it had received nothing before"
	}
	return fmt.Sprintf("it had received %d messages before, the last %s", c.taken, quoted(c.recent))
}

// missing fails the test for a message that did not come.
func (c *Client) missing(t testing.TB, within time.Duration, ended error) {
	t.Helper()
	if ended != nil {
		t.Fatalf("client %s: connection ended (%v, close status %d); %s", c.ID, ended, websocket.CloseStatus(ended), c.history())
	}
	t.Fatalf("client %s: no message within %v; %s", c.ID, within, c.history())
}

// Next returns the client's next message. It fails the test if none comes
// within [Timeout] or the connection ends first, saying what the client
// received before.
func (c *Client) Next(t testing.TB) string {
	t.Helper()
	msg, ok, ended := c.take(Timeout)
	if !ok {
		c.missing(t, Timeout, ended)
	}
	return msg
}

// Expect checks that the client's next messages are want, in order.
func (c *Client) Expect(t testing.TB, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := c.Next(t); got != w {
			t.Fatalf("client %s: got %q, want %q; %s", c.ID, got, w, c.history())
		}
	}
}

// Until takes messages up to and including marker and returns those before
// it. It fails the test if marker does not come within [Timeout].
func (c *Client) Until(t testing.TB, marker string) []string {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	var before []string
	for {
		msg, ok, ended := c.take(time.Until(deadline))
		if !ok {
			t.Fatalf("client %s: no %q within %v (%d messages before it, ended: %v); %s", c.ID, marker, Timeout, len(before), ended, c.history())
		}
		if msg == marker {
			return before
		}
		before = append(before, msg)
	}
}

// Probe calls send(0), send(1), ... every interval until the client
// receives a message, and returns that message. It is for finding when
// delivery works again after an outage. It fails the test if nothing
// arrives within [Timeout] or the connection ends.
func (c *Client) Probe(t testing.TB, interval time.Duration, send func(seq int)) string {
	t.Helper()
	start := time.Now()
	for seq := 0; time.Since(start) < Timeout; seq++ {
		send(seq)
		msg, ok, ended := c.take(interval)
		if ok {
			return msg
		}
		if ended != nil {
			c.missing(t, time.Since(start), ended)
		}
	}
	t.Fatalf("client %s: nothing arrived within %v of probing; %s", c.ID, Timeout, c.history())
	return ""
}

// Connected reports whether the client's connection is still open: it has
// not ended, by either side.
func (c *Client) Connected() bool { return c.wc.Err() == nil }

// Close closes the connection from the client with 1000 (Normal Closure),
// waiting for the server's close frame, and fails the test if that fails.
func (c *Client) Close(t testing.TB) {
	t.Helper()
	if err := c.wc.CloseWith(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("client %s: close: %v", c.ID, err)
	}
}
