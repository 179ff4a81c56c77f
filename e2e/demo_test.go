package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a demo may take to answer GET /.
	startTimeout = 10 * time.Second
	// stopTimeout bounds how long a demo may take to exit after SIGTERM.
	stopTimeout = 10 * time.Second
)

// binDir holds the demo binaries built by this test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsroom-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
	os.Exit(code)
}

var (
	buildMu sync.Mutex
	built   = map[string]string{} // demo name to binary path
)

// buildDemo builds examples/<name> once per test run and returns the binary.
// It runs "go build" from the repository root, the parent of this folder, so
// the build sees the same go.work a developer does.
func buildDemo(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[name]; ok {
		return bin
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./examples/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building examples/%s in %s: %v\n%s", name, root, err, out)
	}
	built[name] = bin
	return bin
}

// demo is one running example program.
type demo struct {
	name   string
	addr   string // host:port it listens on
	cmd    *exec.Cmd
	output *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // the result of cmd.Wait, set before exited closes
}

// startDemo builds and starts examples/<name> with the flags args, listening
// on addr, or on a free loopback port when addr is empty, and waits until
// GET / answers 200. The process is killed at the end of the test if the
// test has not stopped it.
func startDemo(t *testing.T, name, addr string, args ...string) *demo {
	t.Helper()
	bin := buildDemo(t, name)
	if addr == "" {
		addr = freeAddr(t)
	}
	d := &demo{
		name:   name,
		addr:   addr,
		cmd:    exec.Command(bin, append([]string{"-addr", addr}, args...)...),
		output: &lockedBuffer{},
		exited: make(chan struct{}),
	}
	d.cmd.Stdout = d.output
	d.cmd.Stderr = d.output
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.kill(t)
		}
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, d.cmd.Process.Pid, d.output.String())
		}
	})
	d.waitReady(t)
	return d
}

// URL returns the demo's address with the given path, such as "/".
func (d *demo) URL(path string) string {
	return "http://" + d.addr + path
}

func (d *demo) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	var lastErr error
	for {
		resp, err := client.Get(d.URL("/"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("GET / answered %s", resp.Status)
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("%s did not serve GET / on %s within %v: %v", d.name, d.addr, startTimeout, lastErr)
		}
		select {
		case <-d.exited:
			t.Fatalf("%s exited before serving: %v\n%s", d.name, d.err, d.output.String())
		case <-poll.C:
		}
	}
}

// stop sends SIGTERM to the demo's process and fails the test unless it
// exits with status 0 within stopTimeout: shutting down gracefully is part of
// what the demos promise.
func (d *demo) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to %s (pid %d): %v", d.name, d.cmd.Process.Pid, err)
	}
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		d.kill(t)
		t.Fatalf("%s (pid %d) still running %v after SIGTERM", d.name, d.cmd.Process.Pid, stopTimeout)
	}
	if d.err != nil {
		t.Fatalf("%s (pid %d) after SIGTERM: %v, want exit status 0", d.name, d.cmd.Process.Pid, d.err)
	}
}

// kill ends the process without waiting for a graceful shutdown.
func (d *demo) kill(t *testing.T) {
	if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("killing %s (pid %d): %v", d.name, d.cmd.Process.Pid, err)
	}
	<-d.exited
}

// freeAddr returns a loopback address that nothing listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// lockedBuffer is a bytes.Buffer that the process's output goroutines and
// the test can use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
