package redisbroker

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// The servers the fault and cluster tests start, kill, stop and resume
// themselves, found in PATH. Every process is one the test started,
// signalled by its PID.
const (
	redisServerBin = "redis-server"
	redisCLIBin    = "redis-cli"
)

// requireBinaries skips the test when a binary is not in PATH, unless CI
// is "true", where that is a failure.
func requireBinaries(t *testing.T, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required (CI=true): %v", bin, err)
			}
			t.Skipf("%s not found: install Redis 7 (redis-server, redis-cli) to run this test", bin)
		}
	}
}

// privateRedis is a redis-server this test started and alone may signal.
type privateRedis struct {
	t     *testing.T
	port  string
	extra []string // more arguments of redis-server
	cmd   *exec.Cmd
}

// startPrivateRedis starts a redis-server on a free port, with extra
// arguments, and waits until it answers. The test's cleanup kills it.
func startPrivateRedis(t *testing.T, extra ...string) *privateRedis {
	t.Helper()
	requireBinaries(t, redisServerBin)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	r := &privateRedis{t: t, port: port, extra: extra}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) addr() string { return "127.0.0.1:" + r.port }

// start runs redis-server on r's port and waits until it answers.
func (r *privateRedis) start() {
	r.t.Helper()
	args := append([]string{"--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, r.extra...)
	r.cmd = exec.Command(redisServerBin, args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.waitAnswers()
}

// waitAnswers waits until the server answers PING.
func (r *privateRedis) waitAnswers() {
	r.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	nodetest.WaitFor(r.t, "redis-server on "+r.port+" to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// kill kills the server this test started, by its PID, and reaps it. A
// stopped server is resumed first, so that nothing waits for it.
func (r *privateRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// stop stops the server (SIGSTOP): its connections stay open and the
// kernel still accepts new ones, but it answers nothing, as a server behind
// a dead network path.
func (r *privateRedis) stop() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatal(err)
	}
}

// resume resumes a stopped server (SIGCONT).
func (r *privateRedis) resume() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		r.t.Fatal(err)
	}
}
