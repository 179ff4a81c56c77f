package wsroom

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
)

// Conn is one WebSocket connection registered with a [ConnectionManager].
//
// All its methods are safe for concurrent use, except that only one
// goroutine at a time may call [Conn.Read]. Messages reach a Conn through
// the manager ([ConnectionManager.SendPersonal], [ConnectionManager.Broadcast]);
// they are queued and written by the connection's own writer, never by the
// caller.
type Conn struct {
	m           *ConnectionManager
	id          string
	identity    Identity
	subprotocol string
	netConn     net.Conn // as hijacked: a TLS connection, or the TCP one
	probe       probe    // what the socket says about the peer's progress
	done        chan struct{}

	// The read side, owned by whoever holds readMu: a Read, or the
	// writer waiting for the peer's close frame.
	readMu  sync.Mutex
	br      *bufio.Reader
	readErr error // set once reading has ended for good
	bytesIn atomic.Uint64

	// The write side: the queue and the frames waiting for the writer.
	mu      sync.Mutex
	queue   queue
	writing bool     // a writer goroutine is running
	pongs   [][]byte // payloads of pings to answer, oldest first
	pingOut []byte   // a ping to send, nil if none
	closing bool     // closing started: nothing more is queued, joined or delivered to Read
	close   closeState
	rooms   []*room
	values  map[any]any
	capped  bool // over the process budget under DropNewest: new messages are dropped until the queue drains
	// held is what the connection holds against the budget: its queue,
	// and the messages its writer took and has not yet copied out.
	held atomic.Int64
	// writeLoopFunc is c.writeLoop, bound once: a go statement on a
	// method value allocates each time, on a bound func it does not.
	writeLoopFunc func()

	live liveness

	// Room events waiting for their hooks, and whether a goroutine runs
	// them (see events.go). evMu comes after mu.
	evMu      sync.Mutex
	events    []roomEvent
	evRunning bool
}

// ID returns the connection's ID: the one given in [ConnectOptions], or
// else a random one. IDs need not be unique (the tutorial's chat allows two
// clients named alike); the *Conn is the connection's identity.
func (c *Conn) ID() string { return c.id }

// Identity returns who the [Authenticator] said the connection belongs to,
// or the zero Identity when the manager has none.
func (c *Conn) Identity() Identity { return c.identity }

// Subprotocol returns the negotiated subprotocol, or "" for none.
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Rooms returns the names of the rooms the connection is in, sorted.
func (c *Conn) Rooms() []string {
	c.mu.Lock()
	names := make([]string, len(c.rooms))
	for i, r := range c.rooms {
		names[i] = r.name
	}
	c.mu.Unlock()
	slices.Sort(names)
	return names
}

// Done returns a channel that is closed once the connection is closed: its
// socket is closed and its writer has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// String returns "wsroom.Conn(ID)", for logs.
func (c *Conn) String() string { return fmt.Sprintf("wsroom.Conn(%s)", c.id) }
