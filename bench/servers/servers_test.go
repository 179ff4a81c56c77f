// Package servers_test checks that every reference server speaks the chat
// protocol, by building it, starting it on a free port and running a small
// load against it with the load tool's core and with the wsroom-load binary.
package servers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom/bench/internal/load"
)

// referenceServers are the commands under bench/servers.
var referenceServers = []string{"gorillahub", "melody", "naive"}

// binDir holds the binaries TestMain builds.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wsroom-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	pkgs := []string{"../cmd/wsroom-load"}
	for _, name := range referenceServers {
		pkgs = append(pkgs, "./"+name)
	}
	build := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the reference servers:", err)
		return 1
	}
	return m.Run()
}

// servers returns the binaries to test: the reference servers and, when
// WSROOM_CHATROOM_BIN names a built examples/chatroom, that one too.
func servers() map[string]string {
	bins := map[string]string{}
	for _, name := range referenceServers {
		bins[name] = filepath.Join(binDir, name)
	}
	if bin := os.Getenv("WSROOM_CHATROOM_BIN"); bin != "" {
		bins["chatroom"] = bin
	}
	return bins
}

var listeningLine = regexp.MustCompile(`listening on (?:http://)?(127\.0\.0\.1:\d+)`)

// startServer runs bin on a free port and returns its address and PID. The
// server is killed when the test ends.
func startServer(t *testing.T, bin string) (addr string, pid int) {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		// Keep draining so the server never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case addr = <-found:
		return addr, cmd.Process.Pid
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not print its listening address within 10s", bin)
		return "", 0
	}
}

func TestReferenceServersDeliverEverythingInOrder(t *testing.T) {
	scenarios := []struct {
		name string
		cfg  load.Config
	}{
		{"one sender", load.Config{Clients: 5, Senders: 1, Messages: 20}},
		{"two senders padded", load.Config{Clients: 6, Senders: 2, Messages: 15, Size: 1024, Window: 4}},
		{"rate", load.Config{Clients: 4, Senders: 1, Messages: 10, Rate: 500}},
		{"gorilla client", load.Config{Clients: 5, Senders: 2, Messages: 20, Size: 1024, Client: load.ClientGorilla}},
	}
	for name, bin := range servers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					addr, pid := startServer(t, bin)
					cfg := sc.cfg
					cfg.URL = "ws://" + addr
					cfg.ServerPID = pid
					cfg.Timeout = 15 * time.Second
					res, err := load.Run(context.Background(), cfg)
					if err != nil {
						t.Fatal(err)
					}
					checkClean(t, res, cfg)
					if res.ServerRSSAfter == nil || *res.ServerRSSAfter <= 0 {
						t.Errorf("server RSS not sampled: %+v", res)
					}
				})
			}
		})
	}
}

// checkClean asserts that a run lost, duplicated and reordered nothing and
// that the protocol's join and reply rules held.
func checkClean(t *testing.T, res load.Result, cfg load.Config) {
	t.Helper()
	want := int64(cfg.Senders * cfg.Messages * cfg.Clients)
	switch {
	case res.TimedOut || res.ErrorCount != 0:
		t.Errorf("timed out %v, errors %d: %q", res.TimedOut, res.ErrorCount, res.Errors)
	case res.Connected != cfg.Clients || !res.JoinSettled:
		t.Errorf("connected %d of %d, join settled %v", res.Connected, cfg.Clients, res.JoinSettled)
	case res.JoinDeliveries < int64(cfg.Clients*(cfg.Clients+1)/2):
		// Each client sees its own join and those of the clients registered
		// after it. A server that registers and announces in two steps
		// (naive) may also show a join to a client registered just after.
		t.Errorf("join deliveries %d, want at least %d", res.JoinDeliveries, cfg.Clients*(cfg.Clients+1)/2)
	case res.Expected != want || res.Received != want || res.Lost != 0:
		t.Errorf("expected %d received %d lost %d, want %d delivered", res.Expected, res.Received, res.Lost, want)
	case res.Duplicate != 0 || res.OutOfOrder != 0:
		t.Errorf("duplicated %d, out of order %d", res.Duplicate, res.OutOfOrder)
	case res.Replies != int64(cfg.Senders*cfg.Messages) || res.ReplyBeforeCopy != 0:
		t.Errorf("replies %d (%d before the sender's copy), want %d", res.Replies, res.ReplyBeforeCopy, cfg.Senders*cfg.Messages)
	case res.LatencyP50 <= 0 || res.LatencyMax < res.LatencyP99 || res.LatencyP99 < res.LatencyP50:
		t.Errorf("latencies p50 %v p99 %v max %v", res.LatencyP50, res.LatencyP99, res.LatencyMax)
	}
}

func TestLoadCommandPrintsOneJSONLine(t *testing.T) {
	addr, pid := startServer(t, filepath.Join(binDir, "gorillahub"))
	out, err := exec.Command(filepath.Join(binDir, "wsroom-load"),
		"-url", "ws://"+addr, "-clients", "5", "-senders", "1", "-messages", "20",
		"-server-pid", fmt.Sprint(pid),
		"-goroutines-url", "http://"+addr+"/debug/pprof/goroutine?debug=1",
		"-timeout", "15s").Output()
	if err != nil {
		t.Fatalf("wsroom-load: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %q", out)
	}
	var res load.Result
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatalf("parsing %q: %v", lines[0], err)
	}
	checkClean(t, res, load.Config{Clients: 5, Senders: 1, Messages: 20})
	// 5 readers, 5 writers, the hub and the HTTP server at least.
	if res.ServerGoroutines == nil || *res.ServerGoroutines < 12 {
		t.Errorf("server goroutines %v, want at least 12", res.ServerGoroutines)
	}
	if res.ServerCPU == nil || res.ServerRSSPeak == nil || *res.ServerRSSPeak < *res.ServerRSSAfter {
		t.Errorf("server fields missing or inconsistent: %s", lines[0])
	}
}

func TestSilentClientDoesNotCountAsLoss(t *testing.T) {
	// melody drops what a stuck session cannot take and keeps serving the
	// others, so every reading client must still get everything.
	addr, _ := startServer(t, filepath.Join(binDir, "melody"))
	cfg := load.Config{URL: "ws://" + addr, Clients: 5, Senders: 1, Silent: 1, Messages: 300, Size: 1024, Timeout: 15 * time.Second}
	res, err := load.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Expected != 300*4 || res.Lost != 0 || res.TimedOut {
		t.Errorf("expected %d lost %d timed out %v, want 1200 and nothing lost: %q", res.Expected, res.Lost, res.TimedOut, res.Errors)
	}
	// melody gives a stuck session 10 s before it closes it: never within
	// this run.
	if res.SilentCut == nil || *res.SilentCut != 0 || *res.SilentCutAfter != -1 || *res.SilentCutBy != "" {
		t.Errorf("silent cut %v after %v by %v, want none", res.SilentCut, res.SilentCutAfter, res.SilentCutBy)
	}
}
