package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
)

// A node starts even while its NATS server is unreachable: with
// RetryOnFailedConnect, nats.go keeps connecting in the background. Until
// it succeeds, Broadcast reports the outage with ErrNotConnected, while the
// room's members on this node still get the message. Nothing listens on
// port 1, so this runs without a server.
func ExampleNew() {
	nc, err := nats.Connect("nats://127.0.0.1:1",
		nats.RetryOnFailedConnect(true), // do not fail while the server is away
		nats.MaxReconnects(-1),          // and never give up: see the package documentation
	)
	if err != nil {
		log.Fatal(err)
	}
	broker, err := natsbroker.New(nc, natsbroker.WithPrefix("chat"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := wsroom.New(wsroom.WithBroker(broker))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the lobby travels on", broker.Subject("lobby"))

	err = m.Broadcast(context.Background(), "lobby", wsroom.Text("hello"))
	fmt.Println("broadcast while NATS is away:", errors.Is(err, natsbroker.ErrNotConnected))

	// On shutdown, in this order:
	_ = m.Shutdown(context.Background())
	_ = broker.Close()
	nc.Close()
	// Output:
	// the lobby travels on chat.bG9iYnk
	// broadcast while NATS is away: true
}
