// Command wsroom-load loads a chat server that speaks the benchmark's chat
// protocol (see bench/README.md) and prints one JSON line of results.
//
// It connects -clients clients c0..cN-1 to -url, waits until every client
// saw the last client's join, lets the first -senders clients send
// -messages messages each, waits for the deliveries, and reports loss,
// duplicates, order, latency, throughput and CPU time. With -server-pid it
// also reports the server's RSS and CPU time from /proc.
//
// With -mode echo it loads an echo endpoint (URL/ws) instead: each client
// sends one -size message and reads the reply slowly (-read-rate through a
// -rcvbuf receive buffer), which shows the memory a server holds for big
// messages.
//
// Usage:
//
//	wsroom-load -url ws://127.0.0.1:8080 -clients 1000 -senders 1 -messages 2000
//	wsroom-load -mode echo -url ws://127.0.0.1:8080 -clients 20 -size 16777216 -read-rate 32768
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/wsroom/wsroom/bench/internal/load"
)

func main() {
	var cfg load.Config
	flag.StringVar(&cfg.Mode, "mode", load.ModeChat, "chat: the chat protocol at URL/ws/{id}; echo: one -size message per client to URL/ws, replies read at -read-rate")
	flag.StringVar(&cfg.Client, "client", load.ClientWsroom, "WebSocket client: wsroom (internal/wsclient, cheap per frame) or gorilla (gorilla/websocket, one ReadMessage per message)")
	flag.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080", "server base URL; clients dial URL/ws/{id} (-mode echo: URL/ws), or URL itself if it contains {id}; several comma-separated URLs take the clients in turn")
	flag.IntVar(&cfg.Clients, "clients", 0, "number of clients, ids c0..cN-1 (default 10; -mode echo: 20)")
	flag.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 64, "dials in flight at once")
	flag.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 0, "bound on one dial and handshake (default 10s)")
	flag.IntVar(&cfg.SourceIPs, "source-ips", 0, "spread connections over source addresses 127.0.0.1..127.0.0.N (for more than ~20k clients)")
	flag.DurationVar(&cfg.JoinTimeout, "join-timeout", 0, "bound on waiting for every client to see the last join (default 30s)")
	flag.IntVar(&cfg.Senders, "senders", 1, "clients c0..cS-1 send")
	flag.IntVar(&cfg.Messages, "messages", 100, "messages per sender")
	flag.Float64Var(&cfg.Rate, "rate", 0, "messages per second per sender; 0 sends unthrottled within -window")
	flag.IntVar(&cfg.Window, "window", 16, "unthrottled: messages in flight per sender, acked by the sender's own broadcast copy")
	flag.DurationVar(&cfg.AckTimeout, "ack-timeout", 0, "unthrottled: free a window slot after this long without an ack (default 2s)")
	flag.IntVar(&cfg.Size, "size", 0, "pad each message to at least this many bytes (-mode echo: the message size, default 16 MiB)")
	flag.IntVar(&cfg.Silent, "silent", 0, "clients (right after the senders) that never read after connecting; the run reports when the server cut them")
	flag.DurationVar(&cfg.SilentWait, "silent-wait", 0, "after the deliveries, wait up to this long for the server to cut every silent client")
	flag.Float64Var(&cfg.ReadRate, "read-rate", 0, "-mode echo: bytes per second each client reads (default 32768)")
	flag.IntVar(&cfg.ReceiveBuffer, "rcvbuf", 0, "-mode echo: SO_RCVBUF of each client in bytes (default 131072; below the loopback MSS of 64 KiB TCP falls back to zero-window probes and a slow reader stalls for seconds)")
	flag.DurationVar(&cfg.DrainTimeout, "drain-timeout", 0, "stop waiting for deliveries after this long without progress (default 5s)")
	flag.DurationVar(&cfg.Timeout, "timeout", 0, "bound on the whole run (default 60s)")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "sample this process's RSS and CPU time from /proc")
	flag.StringVar(&cfg.GCURL, "gc-url", "", "before the last RSS sample, GET this URL four times over -idle-wait (e.g. a pprof heap page with ?gc=1, which makes a Go server collect)")
	flag.DurationVar(&cfg.IdleWait, "idle-wait", 20*time.Second, "with -gc-url, how long to collect and wait before sampling RSS")
	flag.StringVar(&cfg.GoroutinesURL, "goroutines-url", "", "fetch the server's goroutine count here after measuring (pprof ?debug=1 page, {\"goroutines\":N} or a number)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsroom-load:", err)
		os.Exit(2)
	}
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsroom-load:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
