package wsroom

import (
	"cmp"
	"slices"
)

// The process's budget for queued bytes ([WithQueueBudget]). Each queue is
// bounded on its own; the budget bounds them all together, so that many
// slow readers cannot take the process's memory between them.
//
// The budget counts real memory: a payload counts once while any queue
// holds it, however many queues share it (a broadcast to ten thousand
// members counts its bytes once). When a new payload takes the total over
// the budget, the send that did it applies the slow-consumer policy to the
// connections holding the most bytes, biggest first, until the total is
// back under seven eighths of the budget, before it returns (outside every
// lock, and never waiting for a peer): under Evict they are evicted, under
// DropOldest their oldest messages are dropped, under DropNewest they take
// no new message until their queue has drained. A message counts until a
// writer has copied it into its buffer for the socket.

// charge counts msg against its owner's budget for n more queues. The
// first manager to queue a payload owns it for good. A broadcast charges
// for every member at once and uncharges those that did not take it.
func (m *ConnectionManager) charge(msg Message, n int) {
	p := msg.p
	if p == nil || n == 0 {
		return
	}
	if p.refs.Add(int32(n)) != int32(n) {
		return
	}
	owner := p.owner.Load()
	if owner == nil {
		if p.owner.CompareAndSwap(nil, m) {
			owner = m
		} else {
			owner = p.owner.Load()
		}
	}
	owner.queuedBytes.Add(int64(len(p.data)))
}

// uncharge uncounts msg for n queues that let it go, written or dropped.
func (m *ConnectionManager) uncharge(msg Message, n int) {
	p := msg.p
	if p == nil || n == 0 {
		return
	}
	if p.refs.Add(-int32(n)) == 0 {
		p.owner.Load().queuedBytes.Add(-int64(len(p.data)))
	}
}

// enforceBudget applies the policy if the queued bytes are over the
// budget, unless another send is doing it. Every send calls it once it has
// queued, outside every lock.
func (m *ConnectionManager) enforceBudget() {
	if m.pendingBytes() <= m.cfg.queueBudget || !m.reaping.CompareAndSwap(false, true) {
		return
	}
	defer m.reaping.Store(false)
	m.stats.overBudget.Add(1)
	m.reapOnce(m.cfg.queueBudget / 8 * 7)
}

// pendingBytes is what the queued bytes will be once the connections whose
// close dropped their queue have ended: a message their writer was in the
// middle of counts until then, and must not make the budget evict others.
func (m *ConnectionManager) pendingBytes() int64 {
	return m.queuedBytes.Load() - m.doomed.Load()
}

// reapOnce applies the policy to the connections holding the most queued
// bytes, biggest first.
//
// Evict and DropOldest free memory at once, but only the bytes no other
// queue shares: holders are taken until the total is under low, or until
// the holders taken add up to the excess, so that a burst shared by
// everyone does not evict or empty everyone in one pass.
//
// DropNewest frees nothing at once: a capped holder's queue drains as its
// peer reads. Holders are capped until those still taking messages hold
// at most an eighth of the budget; the total then grows no further than
// that until capped queues drain.
func (m *ConnectionManager) reapOnce(low int64) {
	type holder struct {
		c     *Conn
		bytes int64
	}
	var holders []holder
	m.mu.RLock()
	for c := range m.conns {
		if b := c.held.Load(); b > 0 {
			holders = append(holders, holder{c, b})
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(holders, func(a, b holder) int { return cmp.Compare(b.bytes, a.bytes) })

	if m.cfg.policy == DropNewest {
		var uncapped int64
		for _, h := range holders {
			if !h.c.isCapped() {
				uncapped += h.bytes
			}
		}
		for _, h := range holders {
			if uncapped <= m.cfg.queueBudget/8 {
				return
			}
			if h.c.capIfQueued() {
				uncapped -= h.bytes
			}
		}
		return
	}
	excess := m.pendingBytes() - low
	for _, h := range holders {
		if excess <= 0 || m.pendingBytes() <= low {
			return
		}
		excess -= h.bytes
		if m.cfg.policy == DropOldest {
			h.c.dropOldestUntil(func() bool { return m.pendingBytes() <= low })
		} else {
			m.evict(h.c)
		}
	}
}

func (c *Conn) isCapped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.capped
}

// capIfQueued makes c take no new message until its queue has drained,
// and reports whether it did.
func (c *Conn) capIfQueued() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.capped || c.queue.n == 0 {
		return false
	}
	c.capped = true
	return true
}

// dropOldestUntil drops c's oldest messages until enough holds or the
// queue is empty.
func (c *Conn) dropOldestUntil(enough func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.queue.n > 0 && !enough() {
		c.dropOldestLocked()
		c.m.stats.droppedOldest.Add(1)
	}
}
