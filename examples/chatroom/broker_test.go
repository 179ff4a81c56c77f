package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
	"github.com/wsroom/wsroom/examples/internal/demotest"
	"github.com/wsroom/wsroom/wsroomtest"
)

// TestChatAcrossNodes runs two chat servers sharing a real broker (Redis
// at 127.0.0.1:6379, NATS at 127.0.0.1:4222, alone or in a list; a broker
// that is not running is skipped) and checks that a room spans both, in
// the tutorial's order.
func TestChatAcrossNodes(t *testing.T) {
	for _, tc := range []struct{ name, url, addr string }{
		{"redis", "redis://127.0.0.1:6379", "127.0.0.1:6379"},
		{"nats", "nats://127.0.0.1:4222", "127.0.0.1:4222"},
		// A list whose first server is down: nats.go moves on to the next.
		{"nats list", "nats://127.0.0.1:1,127.0.0.1:4222", "127.0.0.1:4222"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := net.DialTimeout("tcp", tc.addr, time.Second); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("no %s server: %v", tc.name, err)
				}
				t.Skipf("no %s server: %v", tc.name, err)
			} else {
				_ = c.Close()
			}
			room := fmt.Sprintf("nodes-%d", time.Now().UnixNano())
			node1 := startNode(t, tc.url, "node1")
			node2 := startNode(t, tc.url, "node2")

			a := node1.Dial("/ws/A?room=" + room)
			a.ExpectMessage("A 进入了聊天室")
			b := node2.Dial("/ws/B?room=" + room)
			// A sees its join line as soon as node1 queues it, before node1
			// has published it (a first publish may even dial the broker):
			// B, joining on node2 right after, may see that line too, at any
			// point. Order holds per publishing node, not across nodes.
			earlier := "A 进入了聊天室"
			expectIgnoring(t, b, &earlier, "B 进入了聊天室")
			a.ExpectMessage("B 进入了聊天室")

			b.Send("hi")
			expectIgnoring(t, b, &earlier, "B 发送消息:hi", "服务端回复B:你发送的信息是:hi")
			a.ExpectMessage("B 发送消息:hi")
			a.Send("你好 🍍")
			a.ExpectMessages("A 发送消息:你好 🍍", "服务端回复A:你发送的信息是:你好 🍍")
			expectIgnoring(t, b, &earlier, "A 发送消息:你好 🍍")

			// /members lists this process's members only.
			if got := roomMembers(t, node1, room); len(got) != 1 || got[0] != "A" {
				t.Errorf("node1 members %q, want [A]", got)
			}
			b.Close()
			a.ExpectMessage("B 离开了聊天室")
		})
	}
}

// startNode serves the chat demo with a broker, as -broker and -node-id do.
func startNode(t *testing.T, brokerURL, nodeID string) *wsroomtest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	b, closeBroker, err := openBroker(brokerURL, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := demo.DefaultConfig()
	app, err := newApp(&cfg, log, wsroom.WithBroker(b), wsroom.WithNodeID(nodeID))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), demotest.Timeout)
		defer cancel()
		if err := app.Manager.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
		if err := closeBroker(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	// At, not Wrap, whose cleanup would close the server before the
	// shutdown above.
	return wsroomtest.At(t, srv.URL)
}

// expectIgnoring is ExpectMessages, skipping one message equal to
// *ignore wherever it comes, once across calls: a second copy fails.
func expectIgnoring(t *testing.T, c *wsroomtest.Client, ignore *string, want ...string) {
	t.Helper()
	for i := 0; i < len(want); {
		_, data := c.Next()
		got := string(data)
		if *ignore != "" && got == *ignore {
			*ignore = "" // once at most
			continue
		}
		if got != want[i] {
			t.Fatalf("message %d: got %s, want %s", i+1, demotest.Abbrev(got), demotest.Abbrev(want[i]))
		}
		i++
	}
}

func TestParseBrokerURL(t *testing.T) {
	for _, tc := range []struct {
		url       string
		kind      string
		addrs     []string
		natsURL   string // for nats
		user, pwd string // for redis and redis-cluster
		tls       bool
	}{
		{url: "redis://127.0.0.1:6379", kind: kindRedis, addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://localhost", kind: kindRedis, addrs: []string{"localhost:6379"}},
		{url: "redis://ann:s3cret@redis.example:6380/2", kind: kindRedis, addrs: []string{"redis.example:6380"}, user: "ann", pwd: "s3cret"},
		{url: "rediss://redis.example:6380", kind: kindRedis, addrs: []string{"redis.example:6380"}, tls: true},
		{url: "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3", kind: kindRedisCluster,
			addrs: []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:6379"}},
		{url: "redis+cluster://ann:p%40ss@h1:7000,[::1]:7001/", kind: kindRedisCluster,
			addrs: []string{"h1:7000", "[::1]:7001"}, user: "ann", pwd: "p@ss"},
		{url: "rediss+cluster://h1:7000", kind: kindRedisCluster, addrs: []string{"h1:7000"}, tls: true},
		{url: "nats://127.0.0.1:4222", kind: kindNATS, addrs: []string{"127.0.0.1:4222"}, natsURL: "nats://127.0.0.1:4222"},
		{url: "nats://n1:4222,n2:4223,n3", kind: kindNATS, addrs: []string{"n1:4222", "n2:4223", "n3:4222"},
			natsURL: "nats://n1:4222,nats://n2:4223,nats://n3:4222"},
		{url: "nats://ann:pw@n1:4222,[::1]", kind: kindNATS, addrs: []string{"n1:4222", "[::1]:4222"},
			natsURL: "nats://ann:pw@n1:4222,nats://ann:pw@[::1]:4222"},
		{url: "tls://n1:4222,n2:4222", kind: kindNATS, addrs: []string{"n1:4222", "n2:4222"},
			natsURL: "tls://n1:4222,tls://n2:4222", tls: true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			spec, err := parseBrokerURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if spec.kind != tc.kind || !slices.Equal(spec.addrs, tc.addrs) || spec.natsURL != tc.natsURL || spec.tls != tc.tls {
				t.Fatalf("got kind %q, addresses %q, NATS URL %q, TLS %v; want %q, %q, %q, %v",
					spec.kind, spec.addrs, spec.natsURL, spec.tls, tc.kind, tc.addrs, tc.natsURL, tc.tls)
			}
			user, pwd := spec.username, spec.password
			if spec.redis != nil {
				user, pwd = spec.redis.Username, spec.redis.Password
				if spec.redis.Addr != tc.addrs[0] {
					t.Fatalf("redis address %q, want %q", spec.redis.Addr, tc.addrs[0])
				}
			}
			if user != tc.user || pwd != tc.pwd {
				t.Fatalf("credentials %q:%q, want %q:%q", user, pwd, tc.user, tc.pwd)
			}
		})
	}
}

func TestParseBrokerURLRefusesMalformedURLs(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"127.0.0.1:6379", "want redis://HOST:PORT"},
		{"http://127.0.0.1:6379", `unknown scheme "http"`},
		{"nats://", "no server"},
		{"redis+cluster://", "no server"},
		{"nats://h1:4222,", "server 2 of 2: empty"},
		{"nats://h1:4222,,h2:4222", "server 2 of 3: empty"},
		{"nats://h1:nats", `port "nats" is not a number`},
		{"nats://h1:0", `port "0" is not a number from 1 to 65535`},
		{"redis+cluster://h1:70000", `port "70000" is not a number from 1 to 65535`},
		{"nats://:4222", "has no host"},
		{"nats://::1:4222", "is not HOST:PORT"},
		{"nats://h1:4222/path", "takes no path"},
		{"redis+cluster://h1:7000?read_timeout=1s", "takes no path"},
		{"redis://h1:6379,h2:6379", "2 servers: for a Redis Cluster, use redis+cluster://"},
		{"redis://h1:6379/notanumber", "invalid database number"},
		{"redis+cluster://ann:%zz@h1:7000", "the password is not valid URL encoding"},
		// A password never appears in an error.
		{"redis://ann:hunter2@h1:bad", `"redis://ann:xxxxx@h1:bad"`},
		{"redis://ann:hunter2@h1:6379/x", "invalid database number"},
		{"nats://hunter2@h1:bad", `"nats://xxxxx@h1:bad"`},
		{"redis+cluster://ann:hunter2@h1:7000,", `"redis+cluster://ann:xxxxx@h1:7000,"`},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := parseBrokerURL(tc.url)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "-broker ") {
				t.Fatalf("error %q, want one that starts with -broker and holds %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}
