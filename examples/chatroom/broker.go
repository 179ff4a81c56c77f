package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
	"github.com/wsroom/wsroom/redisbroker"
)

// The -broker URL forms.
const brokerForms = "redis://HOST:PORT, redis+cluster://HOST:PORT,HOST:PORT,... or nats://HOST:PORT,HOST:PORT,..."

// The kinds of broker client -broker can ask for.
const (
	kindRedis        = "redis"         // one Redis server: redis.NewClient
	kindRedisCluster = "redis-cluster" // a Redis Cluster: redis.NewClusterClient
	kindNATS         = "nats"          // a NATS server or cluster: nats.Connect
)

// brokerSpec is what a -broker URL asks for.
type brokerSpec struct {
	kind  string
	addrs []string // HOST:PORT of every server given, in order
	tls   bool     // rediss://, rediss+cluster:// or tls://

	// For kindRedis, the options redis.ParseURL made of the URL; for
	// kindRedisCluster, the credentials of the URL, if any.
	redis              *redis.Options
	username, password string
	// For kindNATS, the server URLs for nats.Connect, credentials included.
	natsURL string
}

// parseBrokerURL parses a -broker URL:
//
//   - redis://[USER:PASSWORD@]HOST:PORT[/DB][?OPTIONS], or rediss:// for
//     TLS: one Redis server, in any form redis.ParseURL takes;
//   - redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT,..., or
//     rediss+cluster:// for TLS: the seed nodes of a Redis Cluster;
//   - nats://[USER:PASSWORD@]HOST:PORT,HOST:PORT,..., or tls:// for TLS:
//     every server of a NATS cluster, or just one.
//
// A missing port is the scheme's default (6379, 4222). The cluster and
// NATS forms take no path and no query. Errors never show the password.
func parseBrokerURL(raw string) (brokerSpec, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return brokerSpec{}, badBrokerURL(raw, "want "+brokerForms)
	}
	var spec brokerSpec
	switch scheme {
	case "redis", "rediss":
		spec.kind, spec.tls = kindRedis, scheme == "rediss"
		userinfo, addrs, err := splitServers(rest, "6379", true)
		if err != nil {
			return brokerSpec{}, badBrokerURL(raw, err.Error())
		}
		if len(addrs) > 1 {
			return brokerSpec{}, badBrokerURL(raw, fmt.Sprintf("%d servers: for a Redis Cluster, use %s+cluster://", len(addrs), scheme))
		}
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return brokerSpec{}, badBrokerURL(raw, scrub(err.Error(), userinfo))
		}
		spec.redis, spec.addrs = opts, []string{opts.Addr}
	case "redis+cluster", "rediss+cluster":
		spec.kind, spec.tls = kindRedisCluster, scheme == "rediss+cluster"
		userinfo, addrs, err := splitServers(rest, "6379", false)
		if err != nil {
			return brokerSpec{}, badBrokerURL(raw, err.Error())
		}
		spec.addrs = addrs
		if userinfo != "" {
			if spec.username, spec.password, err = credentials(userinfo); err != nil {
				return brokerSpec{}, badBrokerURL(raw, err.Error())
			}
		}
	case "nats", "tls":
		spec.kind, spec.tls = kindNATS, scheme == "tls"
		userinfo, addrs, err := splitServers(rest, "4222", false)
		if err != nil {
			return brokerSpec{}, badBrokerURL(raw, err.Error())
		}
		if userinfo != "" {
			userinfo += "@"
		}
		urls := make([]string, len(addrs))
		for i, a := range addrs {
			urls[i] = scheme + "://" + userinfo + a
		}
		spec.addrs, spec.natsURL = addrs, strings.Join(urls, ",")
	default:
		return brokerSpec{}, badBrokerURL(raw, fmt.Sprintf("unknown scheme %q: want %s", scheme, brokerForms))
	}
	return spec, nil
}

// splitServers splits what follows "scheme://" into its credentials and
// its comma-separated HOST:PORT list, checking each address and filling in
// defaultPort. A path, query or fragment is an error unless pathOK.
func splitServers(rest, defaultPort string, pathOK bool) (userinfo string, addrs []string, err error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if tail != "" && tail != "/" && !pathOK {
		return "", nil, errors.New("a server list takes no path, query or fragment")
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	if authority == "" {
		return "", nil, errors.New("no server")
	}
	list := strings.Split(authority, ",")
	for i, a := range list {
		addr, err := hostPort(a, defaultPort)
		if err != nil {
			return "", nil, fmt.Errorf("server %d of %d: %w", i+1, len(list), err)
		}
		addrs = append(addrs, addr)
	}
	return userinfo, addrs, nil
}

// hostPort checks one HOST:PORT, [IPV6]:PORT, HOST or [IPV6] address and
// returns it as HOST:PORT.
func hostPort(a, defaultPort string) (string, error) {
	if a == "" {
		return "", errors.New("empty")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		switch {
		case strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]"):
			host, port = a[1:len(a)-1], defaultPort
		case !strings.Contains(a, ":"):
			host, port = a, defaultPort
		default:
			return "", fmt.Errorf("%q is not HOST:PORT", a)
		}
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", a)
	}
	if strings.ContainsAny(host, " \t[]@") {
		return "", fmt.Errorf("%q is not a valid host", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", a, port)
	}
	return net.JoinHostPort(host, port), nil
}

// credentials decodes USER:PASSWORD (or USER) of a URL.
func credentials(userinfo string) (username, password string, err error) {
	user, pass, _ := strings.Cut(userinfo, ":")
	if username, err = url.PathUnescape(user); err != nil {
		return "", "", errors.New("the user name is not valid URL encoding")
	}
	if password, err = url.PathUnescape(pass); err != nil {
		return "", "", errors.New("the password is not valid URL encoding")
	}
	return username, password, nil
}

// badBrokerURL reports a -broker URL that cannot be used, its password
// hidden.
func badBrokerURL(raw, why string) error {
	return fmt.Errorf("-broker %q: %s", redactURL(raw), why)
}

// redactURL hides the password of a URL, however malformed the rest.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(authority[:at], ":")
	if !hasPass {
		user = "xxxxx" // NATS reads a lone user as a token
	} else {
		user += ":xxxxx"
	}
	return scheme + "://" + user + rest[at:]
}

// scrub hides the credentials of userinfo in an error message that may
// quote the URL.
func scrub(msg, userinfo string) string {
	if _, pass, ok := strings.Cut(userinfo, ":"); ok && pass != "" {
		return strings.ReplaceAll(msg, pass, "xxxxx")
	}
	if userinfo != "" {
		return strings.ReplaceAll(msg, userinfo, "xxxxx")
	}
	return msg
}

// openBroker connects to the broker of a -broker URL (see parseBrokerURL)
// and returns it with the function that closes it and its connection.
// Neither waits for the servers: both brokers keep reconnecting in the
// background, and WebSocket clients stay connected while the broker is
// away.
//
// A NATS connection gets natsbroker.ClientOptions: it reconnects forever,
// finds a server that stopped answering within 3 s and then moves to
// another server of the list.
func openBroker(rawURL string, log *slog.Logger) (wsroom.Broker, func() error, error) {
	spec, err := parseBrokerURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	switch spec.kind {
	case kindRedis, kindRedisCluster:
		var client redis.UniversalClient
		if spec.kind == kindRedis {
			client = redis.NewClient(spec.redis)
		} else {
			opts := &redis.ClusterOptions{Addrs: spec.addrs, Username: spec.username, Password: spec.password}
			if spec.tls {
				opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			client = redis.NewClusterClient(opts)
		}
		b, err := redisbroker.New(client, redisbroker.WithLogger(log))
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		return b, closeBoth(b.Close, client.Close), nil
	default:
		opts := append(natsbroker.ClientOptions(),
			nats.Name("wsroom chatroom"),
			nats.RetryOnFailedConnect(true), // start while NATS is away
		)
		nc, err := nats.Connect(spec.natsURL, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("-broker %q: connect to NATS: %s", redactURL(rawURL), scrub(err.Error(), userinfoOf(rawURL)))
		}
		b, err := natsbroker.New(nc, natsbroker.WithLogger(log))
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return b, closeBoth(b.Close, func() error { nc.Close(); return nil }), nil
	}
}

// userinfoOf returns the credentials of a URL, for scrub.
func userinfoOf(raw string) string {
	_, rest, _ := strings.Cut(raw, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return rest[:at]
	}
	return ""
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
