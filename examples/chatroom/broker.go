package main

import (
	"fmt"
	"log/slog"
	"net/url"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
	"github.com/wsroom/wsroom/redisbroker"
)

// openBroker connects to the broker at rawURL, redis://HOST:PORT or
// nats://HOST:PORT, and returns it with the function that closes it and
// its connection. Neither waits for the server: both brokers keep
// reconnecting in the background, and WebSocket clients stay connected
// while the broker is away.
func openBroker(rawURL string, log *slog.Logger) (wsroom.Broker, func() error, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("-broker: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, nil, fmt.Errorf("-broker: %w", err)
		}
		client := redis.NewClient(opts)
		b, err := redisbroker.New(client, redisbroker.WithLogger(log))
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return b, closeBoth(b.Close, client.Close), nil
	case "nats", "tls":
		nc, err := nats.Connect(rawURL,
			nats.Name("wsroom chatroom"),
			nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(true),
		)
		if err != nil {
			return nil, nil, fmt.Errorf("-broker: connect to NATS: %w", err)
		}
		b, err := natsbroker.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return b, closeBoth(b.Close, func() error { nc.Close(); return nil }), nil
	}
	return nil, nil, fmt.Errorf("-broker %q: want redis://HOST:PORT or nats://HOST:PORT", rawURL)
}

// closeBoth closes a broker, then its connection.
func closeBoth(broker, conn func() error) func() error {
	return func() error {
		err := broker()
		if cerr := conn(); err == nil {
			err = cerr
		}
		return err
	}
}
