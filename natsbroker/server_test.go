package natsbroker

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom/internal/nodetest"
)

// The nats-server processes of the fault tests: each test starts its own,
// on free ports, and kills them by PID when it ends.

const natsServerPath = "/usr/sbin/nats-server"

// natsServer is a nats-server process this test started.
type natsServer struct {
	name string
	port string // client port
	http string // monitoring port, "" if none
	args []string
	cmd  *exec.Cmd
}

// requireNATSServer skips the test if nats-server is not installed, or
// fails it under CI=true.
func requireNATSServer(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(natsServerPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (CI=true): %v", natsServerPath, err)
		}
		t.Skipf("%s missing; install nats-server to run this test", natsServerPath)
	}
}

// freePorts returns n ports that were free a moment ago, all different.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]string, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so that none repeats
		_, ports[i], _ = net.SplitHostPort(l.Addr().String())
	}
	return ports
}

// startNATSServer starts a lone nats-server on 127.0.0.1:port ("" for a
// free port) and waits until it accepts connections.
func startNATSServer(t *testing.T, port string) *natsServer {
	t.Helper()
	requireNATSServer(t)
	if port == "" {
		port = freePorts(t, 1)[0]
	}
	s := &natsServer{name: "nats", port: port, args: []string{"-a", "127.0.0.1", "-p", port}}
	s.start(t)
	return s
}

// startNATSCluster starts size nats-servers joined by routes, each
// soliciting a route to every other, and waits until every server has a
// route to every other.
func startNATSCluster(t *testing.T, size int) []*natsServer {
	t.Helper()
	requireNATSServer(t)
	ports := freePorts(t, 3*size)
	var routes []string
	for i := range size {
		routes = append(routes, "nats://127.0.0.1:"+ports[3*i+1])
	}
	servers := make([]*natsServer, size)
	for i := range servers {
		client, cluster, monitor := ports[3*i], ports[3*i+1], ports[3*i+2]
		s := &natsServer{
			name: "s" + strconv.Itoa(i),
			port: client,
			http: monitor,
			args: []string{
				"-a", "127.0.0.1", "-p", client, "-m", monitor,
				"--server_name", "s" + strconv.Itoa(i),
				"--cluster_name", "wsroomtest",
				"--cluster", "nats://127.0.0.1:" + cluster,
				"--routes", strings.Join(slices.Delete(slices.Clone(routes), i, i+1), ","),
			},
		}
		s.start(t)
		servers[i] = s
	}
	for _, s := range servers {
		nodetest.WaitFor(t, s.name+" to have a route to every other server", func() bool {
			r, err := s.routez()
			return err == nil && r.NumRoutes == size-1
		})
	}
	return servers
}

// start runs the server and waits until it accepts connections. The
// test's cleanup kills it.
func (s *natsServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(natsServerPath, s.args...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	nodetest.WaitFor(t, s.name+" to accept connections", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+s.port, 100*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

func (s *natsServer) url() string { return "nats://127.0.0.1:" + s.port }

// kill stops the server with SIGKILL by its PID and reaps it; it is
// idempotent, and kills a stopped server too.
func (s *natsServer) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// pause stops the server with SIGSTOP: its connections stay open and the
// kernel keeps taking their bytes, but nothing answers, as with a
// half-open connection.
func (s *natsServer) pause(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// resume continues a paused server with SIGCONT.
func (s *natsServer) resume(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// routez is what the monitoring endpoint /routez?subs=1 says.
type routez struct {
	NumRoutes int `json:"num_routes"`
	Routes    []struct {
		RemoteName string   `json:"remote_name"`
		Subs       []string `json:"subscriptions_list"`
	} `json:"routes"`
}

func (s *natsServer) routez() (routez, error) {
	var r routez
	err := s.monitor("/routez?subs=1", &r)
	return r, err
}

// clients returns how many client connections the server has.
func (s *natsServer) clients() (int, error) {
	var c struct {
		NumConnections int `json:"num_connections"`
	}
	err := s.monitor("/connz", &c)
	return c.NumConnections, err
}

// monitor decodes what the monitoring endpoint at path answers into v.
func (s *natsServer) monitor(path string, v any) error {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get("http://127.0.0.1:" + s.http + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// awaitInterest waits until every route of every server carries every
// subject, that is, until each server knows that every other server has
// subscribers to each. A subscription confirmed by the server a node is
// connected to reaches the other servers asynchronously.
func awaitInterest(t *testing.T, servers []*natsServer, subjects []string) {
	t.Helper()
	for _, s := range servers {
		nodetest.WaitFor(t, s.name+"'s routes to carry every room's subject", func() bool {
			r, err := s.routez()
			if err != nil || r.NumRoutes != len(servers)-1 {
				return false
			}
			for _, route := range r.Routes {
				for _, subject := range subjects {
					if !slices.Contains(route.Subs, subject) {
						return false
					}
				}
			}
			return true
		})
	}
}

// clusterConn connects to servers with [ClientOptions], trying home first
// and the others in order (nats.go does not shuffle them), and fails the
// test unless it is connected to home.
func clusterConn(t *testing.T, servers []*natsServer, home int, opts ...nats.Option) *nats.Conn {
	t.Helper()
	urls := []string{servers[home].url()}
	for i, s := range servers {
		if i != home {
			urls = append(urls, s.url())
		}
	}
	opts = append(append(ClientOptions(), nats.DontRandomize()), opts...)
	nc := connect(t, strings.Join(urls, ","), opts...)
	if got := nc.ConnectedUrl(); got != servers[home].url() {
		t.Fatalf("connected to %s, want %s", got, servers[home].url())
	}
	return nc
}
