package redisbroker

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

// Publish implements [wsroom.Broker]. It sends the batch as one pipeline, a
// PUBLISH per publication in batch order, and returns once Redis has
// answered every command. With a cluster, it sends SPUBLISH instead, and
// one pipeline to each master that owns a channel of the batch, all at
// once, each with that master's publications in batch order; a room's
// channel lives in one slot, so on one master. The publications of a room
// therefore reach Redis, and every subscriber, in the order of the batch
// and of the calls.
//
// Nothing is sent twice or out of order. No command is retried, since a
// retry after a lost reply could deliver twice. With a cluster, a master
// that answers MOVED or ASK (its slot moved) is not followed: going after
// the redirect would send those publications after later ones of the same
// room that did go through. They fail instead, the cluster's slot map is
// reloaded, and later batches go to the new master. A failed batch is
// reported with the first failed publication; the rest of it may have been
// delivered.
//
// While Redis is unreachable, Publish fails once the client gives up
// connecting (go-redis's dial timeout and dial retries). ctx bounds the call even when the client does not apply contexts to its
// reads: Publish then returns at ctx's end, and the next Publish waits for
// the commands still in flight (within its own ctx) before it sends
// anything, so batches never overtake each other.
func (b *Broker) Publish(ctx context.Context, batch []wsroom.Publication) error {
	if len(batch) == 0 {
		return nil
	}
	fail := func(err error) error {
		b.stats.publishErrors.Add(uint64(len(batch)))
		if len(batch) == 1 {
			return fmt.Errorf("redisbroker: publish to room %q: %w", batch[0].Room, err)
		}
		return fmt.Errorf("redisbroker: publish batch of %d: %w", len(batch), err)
	}
	select {
	case b.pubSem <- struct{}{}:
	case <-ctx.Done():
		return fail(fmt.Errorf("the previous batch is still in flight: %w", ctx.Err()))
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.pubSem
		return fail(wsroom.ErrClosed)
	}
	b.wg.Add(1)
	b.mu.Unlock()

	verb := "publish"
	if b.cluster != nil {
		verb = "spublish"
	}
	cmds := make([]publishCmd, len(batch))
	for i, p := range batch {
		cmds[i] = publishCmd{redis.NewIntCmd(ctx, verb, channelName(b.prefix, p.Room), p.Payload)}
	}
	done := make(chan error, 1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.pubSem }()
		b.send(ctx, cmds)
		sent, failed := uint64(0), -1
		for i, cmd := range cmds {
			if cmd.Err() == nil {
				sent++
			} else if failed < 0 {
				failed = i
			}
		}
		b.stats.published.Add(sent)
		switch {
		case failed < 0:
			done <- nil
		case len(batch) == 1:
			done <- cmds[failed].Err()
		default:
			done <- fmt.Errorf("%d failed, the first to room %q: %w", len(batch)-int(sent), batch[failed].Room, cmds[failed].Err())
		}
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		if b.cluster != nil {
			b.cluster.ReloadState(b.ctx) // in the background: the slot map may be stale
		}
		return fail(err)
	}
	return nil
}

// publishCmd is a PUBLISH or SPUBLISH that go-redis never retries: a retry
// after a lost reply could deliver the payload twice, and delivery is at
// most once. A pipeline that holds one is never retried either.
type publishCmd struct{ *redis.IntCmd }

func (publishCmd) NoRetry() bool { return true }

// channel returns the channel cmd publishes to.
func (cmd publishCmd) channel() string {
	name, _ := cmd.Args()[1].(string)
	return name
}

// send runs cmds, in order, on one pipeline of the client; with a cluster,
// on one pipeline to each master, concurrently. It sets every command's
// result, an error included.
func (b *Broker) send(ctx context.Context, cmds []publishCmd) {
	if b.cluster == nil {
		pipeline(ctx, b.client, cmds)
		return
	}
	type part struct {
		master *redis.Client
		cmds   []publishCmd
	}
	var parts []*part
	byAddr := make(map[string]*part)
	byChannel := make(map[string]*part)
	for _, cmd := range cmds {
		name := cmd.channel()
		p := byChannel[name]
		if p == nil {
			master, err := b.cluster.MasterForKey(ctx, name)
			if err != nil {
				cmd.SetErr(fmt.Errorf("find the master of %s: %w", name, err))
				continue
			}
			addr := master.Options().Addr
			if p = byAddr[addr]; p == nil {
				p = &part{master: master}
				byAddr[addr] = p
				parts = append(parts, p)
			}
			byChannel[name] = p
		}
		p.cmds = append(p.cmds, cmd)
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() { pipeline(ctx, p.master, p.cmds) })
	}
	wg.Wait()
}

// pipeline runs cmds on one pipeline of client. go-redis sets each
// command's result, its error included: its own error reply (a MOVED or ASK
// among them, which a plain client's pipeline does not follow), or the
// connection's error on every command that got no reply.
func pipeline(ctx context.Context, client redis.UniversalClient, cmds []publishCmd) {
	pipe := client.Pipeline()
	for _, cmd := range cmds {
		_ = pipe.Process(ctx, cmd)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !slices.ContainsFunc(cmds, func(cmd publishCmd) bool { return cmd.Err() != nil }) {
		// Not expected of go-redis; reported rather than taken as success.
		for _, cmd := range cmds {
			cmd.SetErr(err)
		}
	}
}
