package redisbroker_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/redisbroker"
)

// Every node of the application runs this with its own address; rooms are
// shared through Redis.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	broker, err := redisbroker.New(client, redisbroker.WithPrefix("chat:"))
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	m, err := wsroom.New(wsroom.WithBroker(broker))
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := m.Connect(w, r, wsroom.JoinRooms("lobby"))
		if err != nil {
			return
		}
		for {
			msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			// Reaches the lobby's members on every node, the sender aside.
			_ = m.Broadcast(context.Background(), "lobby", msg, wsroom.Except(c))
		}
	})
	srv := &http.Server{Addr: "127.0.0.1:8080"}
	go func() { _ = srv.ListenAndServe() }()

	// ... on shutdown:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.Shutdown(ctx)
	_ = srv.Shutdown(ctx)
}
