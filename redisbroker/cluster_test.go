package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// clusterNodeTimeout is the cluster-node-timeout of the test cluster, in
// milliseconds: a master that answers nothing for this long is failed
// over to its replica.
const clusterNodeTimeout = 1000

// redisCluster is a Redis Cluster of three masters with a replica each,
// started by the test on free ports.
type redisCluster struct {
	t       *testing.T
	servers map[string]*privateRedis // by address
}

// startRedisCluster starts six cluster-enabled redis-servers, makes them a
// cluster with redis-cli --cluster create, and waits until every node
// reports cluster_state:ok, knows the five others, and every replica is in
// sync with its master. The test's cleanup kills every server.
func startRedisCluster(t *testing.T) *redisCluster {
	t.Helper()
	requireBinaries(t, redisServerBin, redisCLIBin)
	dir := t.TempDir()
	c := &redisCluster{t: t, servers: make(map[string]*privateRedis)}
	var addrs []string
	for range 6 {
		_, bus, _ := net.SplitHostPort(freeAddr(t))
		r := startPrivateRedis(t, "--cluster-enabled", "yes",
			"--cluster-port", bus,
			"--cluster-node-timeout", strconv.Itoa(clusterNodeTimeout),
			"--cluster-config-file", "nodes-"+bus+".conf",
			"--dir", dir,
			"--repl-diskless-sync-delay", "0")
		c.servers[r.addr()] = r
		addrs = append(addrs, r.addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.Timeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, redisCLIBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		admin := newClient(t, addr, 0)
		nodetest.WaitFor(t, addr+" to be in a healthy cluster of 6 nodes, replicas in sync", func() bool {
			info, err := admin.Info(ctx, "replication", "cluster").Result()
			if err != nil {
				return false
			}
			state, err := admin.ClusterInfo(ctx).Result()
			return err == nil &&
				strings.Contains(state, "cluster_state:ok") &&
				strings.Contains(state, "cluster_known_nodes:6") &&
				(strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up"))
		})
	}
	return c
}

// addrs returns the addresses of every node.
func (c *redisCluster) addrs() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for addr := range c.servers {
			if !yield(addr) {
				return
			}
		}
	})
}

// newClusterClient returns a client of the cluster, closed when t ends. Like
// nodeBroker's, it never retries a command and gives up dialling after a
// second.
func newClusterClient(t *testing.T, addrs []string) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// masterOf returns the address of the master that serves room's channel.
func masterOf(t *testing.T, c *redis.ClusterClient, prefix, room string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.Timeout)
	defer cancel()
	m, err := c.MasterForKey(ctx, channelName(prefix, room))
	if err != nil {
		t.Fatal(err)
	}
	return m.Options().Addr
}

// roomsOn returns perMaster rooms named name-N whose channels live on each
// of the three masters, and the masters in the order their rooms come.
func roomsOn(t *testing.T, c *redis.ClusterClient, prefix, name string, perMaster int) (rooms []string, masters []string) {
	t.Helper()
	count := make(map[string]int)
	for i, full := 0, 0; full < 3; i++ {
		if i > 10000 {
			t.Fatalf("rooms found on %d masters only: %v", len(count), count)
		}
		room := name + "-" + strconv.Itoa(i)
		m := masterOf(t, c, prefix, room)
		if count[m] == perMaster {
			continue
		}
		if count[m] == 0 {
			masters = append(masters, m)
		}
		count[m]++
		rooms = append(rooms, room)
		if count[m] == perMaster {
			full++
		}
	}
	return rooms, masters
}

// moveSlot moves the slot of channel from its master, from, to the master
// to, as the end of a resharding does: IMPORTING on to, MIGRATING on from,
// then NODE on to, on from and on every other master. The slot holds no
// keys, so there is nothing to migrate.
func (c *redisCluster) moveSlot(channel, from, to string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.Timeout)
	defer cancel()
	admin := func(addr string) *redis.Client { return newClient(c.t, addr, 0) }
	slot, err := admin(from).ClusterKeySlot(ctx, channel).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	fromID, err1 := admin(from).ClusterMyID(ctx).Result()
	toID, err2 := admin(to).ClusterMyID(ctx).Result()
	if err := errors.Join(err1, err2); err != nil {
		c.t.Fatal(err)
	}
	steps := []struct {
		addr string
		args []any
	}{
		{to, []any{"cluster", "setslot", slot, "importing", fromID}},
		{from, []any{"cluster", "setslot", slot, "migrating", toID}},
		{to, []any{"cluster", "setslot", slot, "node", toID}},
		{from, []any{"cluster", "setslot", slot, "node", toID}},
	}
	for _, addr := range c.addrs() {
		if addr != from && addr != to && strings.Contains(admin(addr).Info(ctx, "replication").Val(), "role:master") {
			steps = append(steps, struct {
				addr string
				args []any
			}{addr, []any{"cluster", "setslot", slot, "node", toID}})
		}
	}
	for _, s := range steps {
		if err := admin(s.addr).Do(ctx, s.args...).Err(); err != nil {
			c.t.Fatalf("%s: %v: %v", s.addr, s.args, err)
		}
	}
}

// traffic is every node of a test broadcasting numbered messages
// ([nodetest.RoomMessage]) to every room of a list, at a steady pace, until
// stopped. A Broadcast may fail with wsroom.ErrBrokerUnavailable (the
// broker is failing over); any other error fails the test.
type traffic struct {
	halt func() // stops the traffic and waits for it, once
	errs chan error

	mu   sync.Mutex
	sent [][]int // broadcasts made so far, by node and room
}

// startTraffic has each node broadcast to every room every pace, from a
// goroutine of its own. The test's cleanup stops it, if the test did not.
func startTraffic(t *testing.T, nodes []*nodetest.Node, rooms []string, pace time.Duration) *traffic {
	tr := &traffic{errs: make(chan error, len(nodes)), sent: make([][]int, len(nodes))}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		tr.sent[i] = make([]int, len(rooms))
		wg.Go(func() {
			for {
				for r, room := range rooms {
					tr.mu.Lock()
					seq := tr.sent[i][r]
					tr.sent[i][r]++
					tr.mu.Unlock()
					ctx, cancel := context.WithTimeout(context.Background(), nodetest.Timeout)
					err := n.Manager.Broadcast(ctx, room, wsroom.Text(nodetest.RoomMessage(i, r, seq)))
					cancel()
					if err != nil && !errors.Is(err, wsroom.ErrBrokerUnavailable) {
						tr.errs <- fmt.Errorf("%s: broadcast to %s: %w", n.Name, room, err)
						return
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(pace):
				}
			}
		})
	}
	tr.halt = sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	t.Cleanup(tr.halt)
	return tr
}

// sentSoFar returns how many broadcasts node i has made to the r-th room.
func (tr *traffic) sentSoFar(i, r int) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent[i][r]
}

// stop stops the traffic, fails the test on a broadcast that failed other
// than with wsroom.ErrBrokerUnavailable, and returns what each node sent to
// each room.
func (tr *traffic) stop(t *testing.T) [][]int {
	t.Helper()
	tr.halt()
	select {
	case err := <-tr.errs:
		t.Fatal(err)
	default:
	}
	return tr.sent
}

// A Redis Cluster with sharded Pub/Sub: each node broadcasts to rooms spread
// over the three masters, each room's broadcasts reach every node in order;
// then the master of some rooms is killed while traffic flows. Its replica
// takes over, every node moves those rooms' subscriptions to it, and the
// rooms work again within a bounded window; rooms on the other masters
// lose nothing, and no room gets a broadcast twice or out of order.
func TestClusterRoomsSurviveAMasterFailover(t *testing.T) {
	cluster := startRedisCluster(t)
	prefix := testPrefix()
	admin := newClusterClient(t, cluster.addrs())
	rooms, masters := roomsOn(t, admin, prefix, "room", 4)
	victim := masters[0]
	probes, _ := roomsOn(t, admin, prefix, "probe", 3)
	probes = slices.DeleteFunc(probes, func(room string) bool { return masterOf(t, admin, prefix, room) != victim })

	nodes := nodetest.Cluster(t, 3, func(string) wsroom.Broker {
		return newBroker(t, newClusterClient(t, cluster.addrs()), prefix)
	})
	nodetest.CheckRoomsOrder(t, nodes, rooms, 1, 10)
	for _, n := range nodes {
		if st := brokerOf(n).Stats(); st.Connections != 3 {
			t.Fatalf("%s broker stats %+v, want a Pub/Sub connection to each of 3 masters", n.Name, st)
		}
	}

	// Node i probes room probes[i], on the victim, for a client of node i+1.
	victimRoom := slices.IndexFunc(rooms, func(room string) bool { return masterOf(t, admin, prefix, room) == victim })
	var clients, watchers, probers []*nodetest.Client
	for i, n := range nodes {
		clients = append(clients, n.Dial(t, "traffic", rooms...))
		watchers = append(watchers, n.Dial(t, "watch", rooms[victimRoom]))
		probers = append(probers, nodes[(i+1)%len(nodes)].Dial(t, "probe"+strconv.Itoa(i), probes[i]))
	}
	for i, n := range nodes {
		n.Broadcast(t, probes[i], "before")
		probers[i].Expect(t, "before")
	}

	tr := startTraffic(t, nodes, rooms, 20*time.Millisecond)
	// ProbeEach measures from its call, right after the kill.
	cluster.servers[victim].kill()
	first, after := nodetest.ProbeEach(t, 10*time.Millisecond, probers, func(i, seq int) {
		ctx, cancel := context.WithTimeout(context.Background(), nodetest.Timeout)
		defer cancel()
		_ = nodes[i].Manager.Broadcast(ctx, probes[i], wsroom.Text("probe "+strconv.Itoa(seq)))
	})
	t.Logf("loss window: %v from killing master %s to the first cross-node delivery in a room it served; every node both ways after %v",
		slices.Min(after).Round(time.Millisecond), victim, slices.Max(after).Round(time.Millisecond))
	for i, m := range first {
		if !strings.HasPrefix(m, "probe ") {
			t.Fatalf("client %s's first message after the kill is %q, want a probe", probers[i].ID, m)
		}
	}
	if limit := 10 * time.Second; slices.Max(after) > limit {
		t.Fatalf("rooms of the killed master worked again on every node after %v, want within %v", slices.Max(after), limit)
	}
	// The traffic goes on until it crosses every pair of nodes again in a
	// room of the killed master: that room's order is checked after the
	// failover too.
	tr.awaitCrossing(t, watchers, victimRoom)
	sent := tr.stop(t)

	nodetest.SendEndMarkers(t, nodes, rooms)
	healthy := func(_, r int) bool { return masterOf(t, admin, prefix, rooms[r]) != victim }
	lost, crossing := 0, 0
	for j, c := range clients {
		got := c.TakeRoomMessages(t, len(nodes), len(rooms))
		if err := got.Check(sent, healthy); err != nil {
			t.Fatalf("client %s: %v", c.ID, err)
		}
		for i := range nodes {
			for r := range rooms {
				if i != j && !healthy(i, r) {
					crossing += sent[i][r]
					lost += sent[i][r] - len(got[[2]int{i, r}])
				}
			}
		}
	}
	t.Logf("messages lost: %d of %d that had to cross nodes in the killed master's %d rooms (%d nodes each broadcasting to each room every 20ms), none elsewhere",
		lost, crossing, len(rooms)/len(masters), len(nodes))
	for _, n := range nodes {
		st := brokerOf(n).Stats()
		t.Logf("%s broker stats: %+v", n.Name, st)
		if st.Moved == 0 || st.Connections != 3 {
			t.Errorf("%s broker stats %+v: want channels moved to the new master, and 3 connections", n.Name, st)
		}
	}
}

// A room's slot moves to another master (as a resharding ends) while every
// node broadcasts to it: the old master drops the room's subscriptions
// (SUNSUBSCRIBE) and answers MOVED to its publishes; each node moves the
// room to the new master, and the room works again with every node's
// broadcasts in order and none twice. The rooms on the other masters lose
// nothing.
func TestClusterRoomKeepsItsOrderWhenItsSlotMoves(t *testing.T) {
	cluster := startRedisCluster(t)
	prefix := testPrefix()
	admin := newClusterClient(t, cluster.addrs())
	rooms, masters := roomsOn(t, admin, prefix, "room", 1) // rooms[0] lives on masters[0]
	nodes := nodetest.Cluster(t, 2, func(string) wsroom.Broker {
		return newBroker(t, newClusterClient(t, cluster.addrs()), prefix)
	})
	var clients, watchers []*nodetest.Client
	for _, n := range nodes {
		clients = append(clients, n.Dial(t, "traffic", rooms...))
		watchers = append(watchers, n.Dial(t, "watch", rooms[0]))
	}
	tr := startTraffic(t, nodes, rooms, 5*time.Millisecond)
	tr.awaitCrossing(t, watchers, 0)

	moving := time.Now()
	cluster.moveSlot(channelName(prefix, rooms[0]), masters[0], masters[1])
	tr.awaitCrossing(t, watchers, 0)
	t.Logf("loss window: %v from the start of the slot's move to the first broadcasts made after it crossing both ways",
		time.Since(moving).Round(time.Millisecond))
	sent := tr.stop(t)

	nodetest.SendEndMarkers(t, nodes, rooms)
	for _, c := range clients {
		got := c.TakeRoomMessages(t, len(nodes), len(rooms))
		if err := got.Check(sent, func(_, r int) bool { return r != 0 }); err != nil {
			t.Fatalf("client %s: %v", c.ID, err)
		}
	}
	for _, n := range nodes {
		// The old master serves none of the rooms now: its connection ended.
		if st := brokerOf(n).Stats(); st.Moved != 1 || st.Connections != 2 {
			t.Errorf("%s broker stats %+v: want the room moved to the new master, and 2 connections", n.Name, st)
		}
	}
}

// awaitCrossing returns once the broadcasts that every node makes to the
// r-th room from now on cross to every other node: watchers[j], a client of
// node j in that room alone, has received one made after the call by every
// node but j. It fails the test if that takes longer than
// [nodetest.Timeout] or a watcher gets anything else than the traffic.
func (tr *traffic) awaitCrossing(t *testing.T, watchers []*nodetest.Client, r int) {
	t.Helper()
	start := time.Now()
	from := make([]int, len(watchers)) // the first broadcast of each node made after start
	for i := range watchers {
		from[i] = tr.sentSoFar(i, r)
	}
	for j, w := range watchers {
		crossed := make([]bool, len(watchers))
		crossed[j] = true // its own node's broadcasts reach it locally
		for slices.Contains(crossed, false) {
			if time.Since(start) > nodetest.Timeout {
				t.Fatalf("watcher %s of node %d: the traffic of room %d crossed from nodes %v only, within %v", w.ID, j, r, crossed, nodetest.Timeout)
			}
			m := w.Next(t)
			i, room, seq, ok := nodetest.ParseRoomMessage(m)
			if !ok || room != r || i >= len(watchers) {
				t.Fatalf("watcher %s of node %d got %q, want the traffic of room %d", w.ID, j, m, r)
			}
			if seq >= from[i] {
				crossed[i] = true
			}
		}
	}
}
