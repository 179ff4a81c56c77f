package natsbroker_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
)

// A node starts even while its NATS server is unreachable: with
// RetryOnFailedConnect, nats.go keeps connecting in the background. A
// broadcast reaches the room's members on this node at once and is queued
// for NATS; its publish fails while NATS is away, which the counters show
// and the next broadcasts report with ErrBrokerUnavailable. Nothing listens
// on port 1, so this runs without a server.
func ExampleNew() {
	opts := append(natsbroker.ClientOptions(), // reconnect forever, find dead servers fast
		nats.RetryOnFailedConnect(true), // and do not fail while the server is away
	)
	nc, err := nats.Connect("nats://127.0.0.1:1", opts...)
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
	fmt.Println("broadcast while NATS is away:", err)

	// On shutdown, in this order. Shutdown hands what is queued to the
	// broker first.
	_ = m.Shutdown(context.Background())
	fmt.Println("publish errors:", m.Stats().BrokerPublishErrors, broker.Stats().PublishErrors)
	_ = broker.Close()
	nc.Close()
	// Output:
	// the lobby travels on chat.bG9iYnk
	// broadcast while NATS is away: <nil>
	// publish errors: 1 1
}
