package natsbroker

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom/internal/nodetest"
	"go.uber.org/goleak"
)

// sharedURL is the NATS server most tests use; the fault test starts its
// own.
const sharedURL = "nats://127.0.0.1:4222"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connect returns a connection to url that the test closes at cleanup. If
// the server cannot be reached the test is skipped, unless CI is "true".
func connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Timeout(2 * time.Second)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS server at %s unreachable (CI=true): %v", url, err)
		}
		t.Skipf("NATS server at %s unreachable; start one (nats-server -a 127.0.0.1 -p 4222) to run this test: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newBroker returns a broker on nc with a prefix of its own, so tests
// sharing a server never see each other's rooms. The test closes it at
// cleanup.
func newBroker(t *testing.T, nc *nats.Conn, prefix string, opts ...Option) *Broker {
	t.Helper()
	return nodetest.Open(t, func() (*Broker, error) {
		return New(nc, append([]Option{WithPrefix(prefix)}, opts...)...)
	})
}

// testPrefix returns a subject prefix no other test run uses.
func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "wsroomtest." + hex.EncodeToString(b[:])
}
