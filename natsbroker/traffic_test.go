package natsbroker

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// Steady traffic through a fault: every node broadcasts "NAME:SEQ" to one
// room every millisecond, and afterwards each client's messages are checked
// per sender: never a duplicate nor one out of order, and losses only in
// one gap around the fault, whose length is measured.

// trafficInterval is how often each node broadcasts.
const trafficInterval = time.Millisecond

// traffic broadcasts "NAME:SEQ" from a node to a room until stopped.
type traffic struct {
	node *nodetest.Node
	room string

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	sent   []time.Time // when broadcast SEQ was made, by SEQ
	failed int         // broadcasts that returned an error
}

// startTraffic starts broadcasting; the test's cleanup stops it.
func startTraffic(t *testing.T, n *nodetest.Node, room string) *traffic {
	tr := &traffic{node: n, room: room, stopc: make(chan struct{}), done: make(chan struct{})}
	go tr.run()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *traffic) run() {
	defer close(tr.done)
	tick := time.NewTicker(trafficInterval)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		tr.mu.Lock()
		tr.sent = append(tr.sent, time.Now())
		tr.mu.Unlock()
		// Errors are expected while the broker is away: the broadcast
		// still reached this node's members.
		err := tr.node.Manager.Broadcast(context.Background(), tr.room, wsroom.Text(tr.node.Name+":"+strconv.Itoa(seq)))
		if err != nil {
			tr.mu.Lock()
			tr.failed++
			tr.mu.Unlock()
		}
		select {
		case <-tr.stopc:
			return
		case <-tick.C:
		}
	}
}

// stop stops the traffic and waits until its last broadcast has returned.
func (tr *traffic) stop() {
	tr.stopOnce.Do(func() { close(tr.stopc) })
	<-tr.done
}

// sentAt returns when broadcast seq was made.
func (tr *traffic) sentAt(seq int) time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent[seq]
}

func (tr *traffic) count() (sent, failed int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.sent), tr.failed
}

// endTraffic stops every node's traffic, has each node broadcast
// "NAME:end", and returns what each client received from each node before
// that node's end marker, as sequence numbers: received[client][node].
func endTraffic(t *testing.T, flows []*traffic, clients []*nodetest.Client) [][][]int {
	t.Helper()
	for _, tr := range flows {
		tr.stop()
	}
	for _, tr := range flows {
		tr.node.Broadcast(t, tr.room, tr.node.Name+":end")
	}
	index := make(map[string]int, len(flows))
	for i, tr := range flows {
		index[tr.node.Name] = i
	}
	received := make([][][]int, len(clients))
	for i, c := range clients {
		received[i] = make([][]int, len(flows))
		for ended := 0; ended < len(flows); {
			msg := c.Next(t)
			name, seq, ok := strings.Cut(msg, ":")
			from, known := index[name]
			if !ok || !known {
				t.Fatalf("client %s got %q, not a traffic message", c.ID, msg)
			}
			if seq == "end" {
				ended++
				continue
			}
			n, err := strconv.Atoi(seq)
			if err != nil {
				t.Fatalf("client %s got %q, not a traffic message", c.ID, msg)
			}
			received[i][from] = append(received[i][from], n)
		}
	}
	return received
}

// gap is a run of broadcasts from one node that one client never got.
type gap struct {
	first, last int // the first and last sequence numbers missing
}

// gaps checks that seqs, what a client got from a node that made sent
// broadcasts, never goes back nor repeats, and returns the runs of
// broadcasts missing from it.
func gaps(t *testing.T, who string, seqs []int, sent int) []gap {
	t.Helper()
	var missing []gap
	next := 0
	for _, n := range seqs {
		if n < next {
			t.Fatalf("%s: got %d after %d: a duplicate or a broadcast out of order", who, n, next-1)
		}
		if n > next {
			missing = append(missing, gap{next, n - 1})
		}
		next = n + 1
	}
	if next < sent {
		missing = append(missing, gap{next, sent - 1})
	}
	return missing
}

// lossWindow checks that the broadcasts a client got from a node through a
// fault at faultAt have at most one gap, and returns the time from the
// fault to the first broadcast that crossed again, and how many were lost
// (0 and 0 if none was).
func lossWindow(t *testing.T, who string, tr *traffic, seqs []int, faultAt time.Time) (time.Duration, int) {
	t.Helper()
	sent, _ := tr.count()
	missing := gaps(t, who, seqs, sent)
	switch {
	case len(missing) == 0:
		return 0, 0
	case len(missing) > 1:
		t.Fatalf("%s: %d gaps, want at most one: %v", who, len(missing), missing)
	case missing[0].last == sent-1:
		t.Fatalf("%s: broadcasts %d to %d never crossed", who, missing[0].first, missing[0].last)
	}
	g := missing[0]
	return tr.sentAt(g.last + 1).Sub(faultAt), g.last - g.first + 1
}
