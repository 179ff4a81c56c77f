// Package wsroomtest tests WebSocket handlers, wsroom's or any other: it
// serves a handler on a loopback test server, dials clients with the
// headers, cookies, tokens and Origin a test needs, and checks what they
// receive against deadlines. It has peers that misbehave on purpose: a
// client that stops reading, a raw client that neither reads nor answers
// pings, and one that writes frames by hand, invalid ones too.
//
// Every expectation waits at most [Server.Timeout]; a failed one fails the
// test at once, saying what was received instead, and never hangs.
//
//	srv := wsroomtest.NewServer(t, handler)
//	ann := srv.Dial("/ws/ann")
//	ann.ExpectMessage("ann joined")
//	ann.Send("hi")
//	ann.ExpectMessage("ann says: hi")
//
// It uses only the standard library and github.com/coder/websocket.
package wsroomtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// TB is what the kit needs of a test: *testing.T, *testing.B and
// testing.TB satisfy it.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// DefaultTimeout is how long an expectation waits unless
// [Server.Timeout] says otherwise. It is generous, for tests under -race
// on busy machines: a passing test never waits for it.
const DefaultTimeout = 10 * time.Second

// Server is a handler served on a loopback test server for one test. It is
// closed when the test ends.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	// Timeout bounds every expectation of the clients it dials. Default:
	// DefaultTimeout.
	Timeout time.Duration

	t         TB
	addr      string          // HOST:PORT
	transport *http.Transport // cloned for every client
}

// NewServer serves h for the duration of the test.
func NewServer(t TB, h http.Handler) *Server {
	t.Helper()
	return Wrap(t, httptest.NewServer(h))
}

// Wrap uses a server the test started itself, with a listener or a TLS
// configuration of its own, and closes it when the test ends.
func Wrap(t TB, srv *httptest.Server) *Server {
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Timeout: DefaultTimeout, t: t,
		addr: srv.Listener.Addr().String(), transport: srv.Client().Transport.(*http.Transport)}
}

// NewTLSServer serves h over TLS, with httptest's certificate, which the
// clients it dials trust.
func NewTLSServer(t TB, h http.Handler) *Server {
	t.Helper()
	return Wrap(t, httptest.NewTLSServer(h))
}

// At is a Server for a server already listening at url
// (http://HOST:PORT) that the test runs and stops itself: a program's own
// serving loop with its own http.Server settings, or a server whose
// shutdown must come in an order of the test's. At neither starts nor
// closes it. Its clients trust the system's certificates only, so a TLS
// server with httptest's certificate wants [Wrap] instead.
func At(t TB, url string) *Server {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Fatalf("wsroomtest: At(%q): want http://HOST:PORT", url)
	}
	return &Server{URL: strings.TrimSuffix(url, "/"), Timeout: DefaultTimeout, t: t,
		addr: u.Host, transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// Addr returns the server's address, 127.0.0.1:PORT.
func (s *Server) Addr() string { return s.addr }

// WSURL returns the ws:// URL of path on the server.
func (s *Server) WSURL(path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

// A DialOption sets something on a client's handshake.
type DialOption func(*dialConfig)

type dialConfig struct {
	header        http.Header
	host          string
	subprotocols  []string
	readLimit     int64
	paused        bool
	receiveBuffer int
}

func buildDialConfig(opts []DialOption) dialConfig {
	cfg := dialConfig{header: http.Header{}, readLimit: 64 << 20}
	for _, opt := range opts {
		opt(&cfg)
	}
	return cfg
}

// Header adds a header to the handshake.
func Header(key, value string) DialOption {
	return func(c *dialConfig) { c.header.Add(key, value) }
}

// Cookie adds a cookie to the handshake. Like net/http, it drops bytes a
// cookie value may not hold (non-ASCII, quotes, semicolons...); to send
// them anyway, as a hostile client can, use Header("Cookie", raw).
func Cookie(name, value string) DialOption {
	return func(c *dialConfig) { c.header.Add("Cookie", (&http.Cookie{Name: name, Value: value}).String()) }
}

// Host sets the handshake's Host header, as a request for another name
// than the server's address carries it (a DNS-rebinding page, say).
func Host(name string) DialOption {
	return func(c *dialConfig) { c.host = name }
}

// Origin sets the handshake's Origin, as a browser page at origin sends it.
func Origin(origin string) DialOption { return Header("Origin", origin) }

// Subprotocols offers subprotocols, in order of preference.
func Subprotocols(protocols ...string) DialOption {
	return func(c *dialConfig) { c.subprotocols = append(c.subprotocols, protocols...) }
}

// Paused makes the client not read until [Client.Resume]: messages the
// server writes meanwhile wait in the kernel's buffers, then in the
// server's queue.
func Paused() DialOption {
	return func(c *dialConfig) { c.paused = true }
}

// ReceiveBuffer fixes the client's socket receive buffer to bytes, so that
// a client that does not read stalls its server after little data. Linux
// doubles the value; below 64 KiB, the segment size on loopback, TCP falls
// back to zero-window probes and a client that reads again crawls.
func ReceiveBuffer(bytes int) DialOption {
	return func(c *dialConfig) { c.receiveBuffer = bytes }
}

// ReadLimit sets the largest message a client accepts. Default: 64 MiB.
func ReadLimit(bytes int64) DialOption {
	return func(c *dialConfig) { c.readLimit = bytes }
}

// Dial opens a WebSocket to path and starts reading it. It fails the test
// if the handshake fails.
func (s *Server) Dial(path string, opts ...DialOption) *Client {
	s.t.Helper()
	ws, resp, err := s.dial(path, opts)
	if err != nil {
		s.t.Fatalf("wsroomtest: dial %s: %v (%s)", path, err, describe(resp))
	}
	return newClient(s.t, path, ws, s.Timeout, buildDialConfig(opts).paused)
}

// TryDial is [Server.Dial] for a handshake that may fail: it returns the
// error and the server's response instead of failing the test, for a test
// that retries until the server has room, or reads a refusal's headers.
// The response's body is not readable. A returned Client is started as
// Dial starts it.
func (s *Server) TryDial(path string, opts ...DialOption) (*Client, *http.Response, error) {
	s.t.Helper()
	ws, resp, err := s.dial(path, opts)
	if err != nil {
		return nil, resp, err
	}
	return newClient(s.t, path, ws, s.Timeout, buildDialConfig(opts).paused), resp, nil
}

// Get sends a plain HTTP GET to path, not a handshake, with the headers,
// cookies, Host and Origin the options give (the others do not apply),
// and returns the response and its body, read whole and closed. It is for
// what a WebSocket endpoint answers a request that is not a handshake
// (426, 403), and for the pages and JSON served beside it. It fails the
// test if the request fails or takes longer than the timeout.
func (s *Server) Get(path string, opts ...DialOption) (*http.Response, string) {
	s.t.Helper()
	cfg := buildDialConfig(opts)
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		s.t.Fatalf("wsroomtest: GET %s: %v", path, err)
	}
	req.Header = cfg.header
	if cfg.host != "" {
		req.Host = cfg.host
	}
	transport := s.transport.Clone()
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		s.t.Fatalf("wsroomtest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("wsroomtest: GET %s: reading the body: %v", path, err)
	}
	return resp, string(body)
}

// ExpectHTTPStatus attempts a WebSocket handshake to path, written by hand
// with exactly the headers the options give, and checks that it is refused
// with status, such as 403 for a refused credential, Origin or Host.
func (s *Server) ExpectHTTPStatus(path string, status int, opts ...DialOption) {
	s.t.Helper()
	c, resp, err := s.dialRaw(path, opts)
	if err == nil {
		_ = c.Close()
		s.t.Fatalf("wsroomtest: handshake to %s was accepted, want HTTP %d", path, status)
	}
	if resp == nil || resp.StatusCode != status {
		s.t.Fatalf("wsroomtest: handshake to %s: %v (%s), want HTTP %d", path, err, describe(resp), status)
	}
}

func (s *Server) dial(path string, opts []DialOption) (*websocket.Conn, *http.Response, error) {
	cfg := buildDialConfig(opts)
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	dopts := &websocket.DialOptions{HTTPHeader: cfg.header, Subprotocols: cfg.subprotocols}
	transport := s.transport.Clone()
	if cfg.receiveBuffer > 0 {
		dialer := &net.Dialer{}
		size := cfg.receiveBuffer
		transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if err := conn.(*net.TCPConn).SetReadBuffer(size); err != nil {
				_ = conn.Close()
				return nil, err
			}
			return conn, nil
		}
	}
	var rt http.RoundTripper = transport
	if cfg.host != "" {
		rt = hostTransport{cfg.host, transport}
	}
	dopts.HTTPClient = &http.Client{Transport: rt}
	defer transport.CloseIdleConnections()
	ws, resp, err := websocket.Dial(ctx, s.WSURL(path), dopts)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(cfg.readLimit)
	return ws, resp, nil
}

// hostTransport sends requests with another Host.
type hostTransport struct {
	host string
	next http.RoundTripper
}

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return h.next.RoundTrip(r)
}

func describe(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}
