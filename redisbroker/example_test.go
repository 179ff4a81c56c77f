package redisbroker_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/redisbroker"
)

// Every node of the application runs this, each on an address of its own;
// rooms are shared through Redis. It needs a Redis to do anything, so it is
// compiled but not run by go test.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	broker, err := redisbroker.New(client,
		redisbroker.WithPrefix("chat:"),
		redisbroker.WithLogger(slog.Default()),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	m, err := wsroom.New(wsroom.WithBroker(broker))
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		_, _ = m.Start(w, r, nil, wsroom.Hooks{
			OnOpen: func(c *wsroom.Conn) {
				// Subscribes the lobby at Redis, if this is its first
				// member on this node, before returning.
				if err := m.Join(ctx, c, "lobby"); err != nil {
					_ = m.Disconnect(c, websocket.StatusTryAgainLater, "")
				}
			},
			OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
				// Reaches the lobby's members on every node, the sender
				// aside.
				_ = m.Broadcast(ctx, "lobby", msg, c)
			},
		})
	})
	srv := &http.Server{Addr: "127.0.0.1:8080"}
	go func() { _ = srv.ListenAndServe() }()

	// ... on shutdown, the manager first, then the broker (deferred above),
	// then the client:
	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.Shutdown(stop)
	_ = srv.Shutdown(stop)
}

// On a Redis Cluster, the broker uses sharded Pub/Sub: each room's channel
// lives on the master that owns its slot, and survives that master's
// failover to its replica. It needs a cluster to do anything, so it is
// compiled but not run by go test.
func ExampleNew_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
	})
	defer client.Close()
	broker, err := redisbroker.New(client, redisbroker.WithHealthCheck(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	m, err := wsroom.New(wsroom.WithBroker(broker))
	if err != nil {
		log.Fatal(err)
	}
	// ... serve as in the example of New; on shutdown, the manager first:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.Shutdown(ctx)
}
