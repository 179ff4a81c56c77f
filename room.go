package wsroom

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"
)

// Room is a handle on a named room of a [ConnectionManager]. Handles are
// cheap: a room exists while it has members, and any number of handles may
// name it. A connection may be in any number of rooms.
//
// Members and Len see this process only; Broadcast reaches every node
// through the manager's [Broker].
type Room struct {
	m    *ConnectionManager
	name string
}

// Room returns a handle on the room called name. Room names are 1 to 255
// bytes of UTF-8; methods given an invalid name fail with [ErrInvalidRoom].
func (m *ConnectionManager) Room(name string) *Room { return &Room{m: m, name: name} }

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// Join makes c a member. With a [Broker], the room is subscribed before
// Join returns, so c misses no broadcast that starts afterwards, from any
// node; ctx bounds that subscription. Joining twice is a no-op. Join fails
// with [ErrClosed] if c is closing.
func (r *Room) Join(ctx context.Context, c *Conn) error { return r.m.join(ctx, c, r.name) }

// Leave removes c from the room; it is a no-op if c is not a member. After
// the last local member leaves, the room is freed and its broker
// subscription closed.
func (r *Room) Leave(c *Conn) {
	rm := r.m.lookupRoom(r.name)
	if rm == nil {
		return
	}
	c.mu.Lock()
	i := slices.Index(c.rooms, rm)
	if i >= 0 {
		c.rooms = slices.Delete(c.rooms, i, i+1)
	}
	c.mu.Unlock()
	if i >= 0 {
		r.m.removeMember(rm, c)
	}
}

// Broadcast is [ConnectionManager.Broadcast] to this room.
func (r *Room) Broadcast(ctx context.Context, msg Message, opts ...BroadcastOption) error {
	return r.m.Broadcast(ctx, r.name, msg, opts...)
}

// Members returns the room's local members, in no particular order.
func (r *Room) Members() []*Conn {
	rm := r.m.lookupRoom(r.name)
	if rm == nil {
		return nil
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return slices.Clone(rm.members)
}

// Len returns the number of local members.
func (r *Room) Len() int {
	rm := r.m.lookupRoom(r.name)
	if rm == nil {
		return 0
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.members)
}

// room is a room's state while it has members or joins in progress.
type room struct {
	name string

	mu      sync.Mutex // held while a broadcast queues, so all members see one order
	members []*Conn
	index   map[*Conn]int // position in members

	subMu sync.Mutex // serialises the broker subscription
	sub   Subscription

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

func (m *ConnectionManager) join(ctx context.Context, c *Conn, name string) error {
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
	defer m.release(r, true)

	if m.cfg.broker != nil {
		r.subMu.Lock()
		if r.sub == nil {
			sub, err := m.cfg.broker.Subscribe(ctx, name, func(p []byte) { m.receive(r, p) })
			if err != nil {
				r.subMu.Unlock()
				return fmt.Errorf("wsroom: subscribe to room %q: %w", name, err)
			}
			r.sub = sub
		}
		r.subMu.Unlock()
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.index[c]; ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	c.rooms = append(c.rooms, r)
	r.index[c] = len(r.members)
	r.members = append(r.members, c)
	return nil
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
	}
	r.mu.Unlock()
	m.release(r, false)
}

// release ends a join (joined) or a leave, and frees r once it has no
// members and no join in progress, closing its broker subscription outside
// every lock.
func (m *ConnectionManager) release(r *room, joined bool) {
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
