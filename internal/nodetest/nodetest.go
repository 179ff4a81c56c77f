// Package nodetest runs wsroom nodes for the integration tests of broker
// adapters (redisbroker, natsbroker), which import it from their own
// modules.
//
// A [Node] is one process of a test cluster: a [wsroom.ConnectionManager]
// with the adapter's broker, served by an httptest server. [Node.Dial]
// connects a [Client], a WebSocket client whose messages a goroutine of its
// own reads into a queue, and returns once the node has joined it to its
// rooms. The Check functions ([CheckOrder], [CheckRoomsOrder],
// [CheckExcept], [CheckJoinThenBroadcast]) run the cross-node scenarios
// that every [wsroom.Broker] must pass, asserting only what the clients
// receive and what the managers count. For failure tests, where messages
// may be lost, [Client.TakeRoomMessages] and [Sequences.Check] check that
// what did arrive came once and in order, and [ProbeEach] times the
// recovery of several paths between nodes. [Logs] records what a broker
// logs.
//
// Every wait is bounded by [Timeout]: a message that does not come fails
// the test with what the client did receive, and nothing hangs. Whatever a
// helper starts, the test's cleanup stops, so goleak finds nothing left.
package nodetest

import (
	"fmt"
	"testing"
	"time"
)

// Timeout bounds every wait of this package. It is generous because the
// adapters' tests run under -race against real servers; a wait lasts this
// long only when the test is failing anyway.
const Timeout = 10 * time.Second

// pollInterval is how often [WaitFor] checks its condition.
const pollInterval = 5 * time.Millisecond

// WaitFor checks cond every few milliseconds until it holds, and fails the
// test if it does not within [Timeout]. It is for state that has no event
// to wait on, such as a broker's counters; what says it is the thing
// awaited, for the failure message.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(Timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", Timeout, what)
	}
}

// poll checks cond every pollInterval until it holds or d has passed, and
// reports whether it held.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
	return true
}

// quoted formats the last few strings of list for a failure message.
func quoted(list []string) string {
	const most = 8
	if len(list) > most {
		return fmt.Sprintf("… %q", list[len(list)-most:])
	}
	return fmt.Sprintf("%q", list)
}

// Open returns what open opens, such as a broker, and closes it when the
// test ends. It fails the test if open or that Close returns an error.
func Open[C interface{ Close() error }](t testing.TB, open func() (C, error)) C {
	t.Helper()
	c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %T: %v", c, err)
		}
	})
	return c
}
