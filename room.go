package wsroom

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"
)

// Rooms. A room exists while it has members or a join in progress; its
// name is all there is to it. With a Broker, a room is subscribed while it
// has local members, so that broadcasts from other processes reach them.

// Join makes c a member of the named room. With a [Broker], the room is
// subscribed before Join returns, so c misses no broadcast that starts
// afterwards, from any process; ctx bounds that subscription. Joining twice
// is a no-op. Join fails with [ErrInvalidRoom] for an invalid name and with
// [ErrClosed] if c is closing or the manager is shut down.
//
// Room names are 1 to 255 bytes of UTF-8.
func (m *ConnectionManager) Join(ctx context.Context, c *Conn, name string) error {
	if err := validRoom(name); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	r := m.rooms[name]
	if r == nil {
		r = &room{name: name, index: make(map[*Conn]int)}
		m.rooms[name] = r
	}
	r.joining++
	m.mu.Unlock()
	defer m.releaseRoom(r, true)

	if m.cfg.broker != nil {
		if err := m.subscribe(ctx, r); err != nil {
			return err
		}
	}

	joined, err := m.addMember(r, c)
	if joined && m.eventsOn() {
		c.runEvents()
	}
	return err
}

// addMember makes c a member of r, queuing its join event, and reports
// whether it joined: not if it already was a member, or is closing.
func (m *ConnectionManager) addMember(r *room, c *Conn) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.index[c]; ok {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false, fmt.Errorf("wsroom: join room %q: %w", r.name, ErrClosed)
	}
	c.rooms = append(c.rooms, r)
	r.index[c] = len(r.members)
	r.members = append(r.members, c)
	if len(r.members) == 1 {
		m.activeRooms.Add(1)
	}
	if m.eventsOn() {
		c.queueEventLocked(roomEvent{room: r.name})
	}
	return true, nil
}

// Leave removes c from the named room; it is a no-op if c is not a member.
// After the last local member leaves, the room is freed and its broker
// subscription closed.
func (m *ConnectionManager) Leave(c *Conn, name string) {
	r := m.lookupRoom(name)
	if r == nil {
		return
	}
	c.mu.Lock()
	i := slices.Index(c.rooms, r)
	if i >= 0 {
		c.rooms = slices.Delete(c.rooms, i, i+1)
		if m.eventsOn() {
			c.queueEventLocked(roomEvent{room: r.name, leave: true})
		}
	}
	c.mu.Unlock()
	if i >= 0 {
		m.removeMember(r, c)
		if m.eventsOn() {
			c.runEvents()
		}
	}
}

// Members returns the named room's members on this process, in no
// particular order.
func (m *ConnectionManager) Members(name string) []*Conn {
	r := m.lookupRoom(name)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.members)
}

// room is a room's state while it has members or joins in progress.
type room struct {
	name string

	mu      sync.Mutex // held while a broadcast queues, so all members see one order
	members []*Conn
	index   map[*Conn]int // position in members

	subMu       sync.Mutex    // guards sub and subscribing, never held across a broker call
	sub         Subscription  // nil until subscribed
	subscribing chan struct{} // closed when a Subscribe in progress ends

	joining int // joins in progress; guarded by the manager's mu
}

func validRoom(name string) error {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q", ErrInvalidRoom, name)
	}
	return nil
}

func (m *ConnectionManager) lookupRoom(name string) *room {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rooms[name]
}

// removeMember takes c out of r's members and frees r if it is empty.
func (m *ConnectionManager) removeMember(r *room, c *Conn) {
	r.mu.Lock()
	if i, ok := r.index[c]; ok {
		last := len(r.members) - 1
		moved := r.members[last]
		r.members[i] = moved
		r.index[moved] = i
		r.members[last] = nil
		r.members = r.members[:last]
		delete(r.index, c)
		if last == 0 {
			m.activeRooms.Add(-1)
		}
	}
	r.mu.Unlock()
	m.releaseRoom(r, false)
}

// releaseRoom ends a join (joined) or a leave, and frees r once it has no
// members and no join in progress, closing its broker subscription outside
// every lock.
func (m *ConnectionManager) releaseRoom(r *room, joined bool) {
	m.mu.Lock()
	if joined {
		r.joining--
	}
	var sub Subscription
	if r.joining == 0 && m.rooms[r.name] == r {
		r.mu.Lock()
		empty := len(r.members) == 0
		r.mu.Unlock()
		if empty {
			delete(m.rooms, r.name)
			r.subMu.Lock()
			sub, r.sub = r.sub, nil
			r.subMu.Unlock()
		}
	}
	m.mu.Unlock()
	if sub != nil {
		if err := sub.Close(); err != nil {
			m.cfg.logger.Warn("wsroom: close broker subscription", "room", r.name, "err", err)
		}
	}
}
