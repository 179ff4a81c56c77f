package wsroom

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// The handshake: the checks a request passes before the upgrade, and the
// hijack that gives the connection to wsroom once coder/websocket has
// accepted it.

// checkOrigin refuses a browser page from another origin unless
// WithOriginPatterns allows it, as coder/websocket's Accept does: the
// Origin's host must equal the request's Host, or match a pattern.
func (m *ConnectionManager) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" {
		if strings.EqualFold(r.Host, u.Host) {
			return nil
		}
		for _, pattern := range m.cfg.originPatterns {
			target := u.Host
			if strings.Contains(pattern, "://") {
				target = u.Scheme + "://" + u.Host
			}
			if ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(target)); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: Origin %q is not allowed for Host %q", ErrRefused, origin, r.Host)
}

// hostAllowed reports whether WithAllowedHosts allows a request's Host
// header, matched without its port.
func (m *ConnectionManager) hostAllowed(host string) bool {
	if m.cfg.allowedHosts == nil {
		return true
	}
	return hostMatches(m.cfg.allowedHosts, host)
}

// hostMatches reports whether host, without its port, matches one of the
// patterns (path.Match syntax, case-insensitively).
func hostMatches(patterns []string, host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// reserveSlot counts a connection against WithMaxConnections.
func (m *ConnectionManager) reserveSlot() bool {
	if m.cfg.maxConnections == 0 {
		m.slots.Add(1)
		return true
	}
	if m.slots.Add(1) > int64(m.cfg.maxConnections) {
		m.slots.Add(-1)
		return false
	}
	return true
}

func (m *ConnectionManager) releaseSlot() { m.slots.Add(-1) }

// upgradeWriter is the ResponseWriter given to websocket.Accept. Its
// Hijack takes the network connection for wsroom and gives coder a
// detached one, on which coder's Conn never reads or writes.
type upgradeWriter struct {
	http.ResponseWriter
	netConn net.Conn
	reader  *bufio.Reader
}

// readBufferSize is the size of a connection's read buffer: small, since
// an idle connection keeps it, and payloads larger than it are read into
// the message directly.
const readBufferSize = 256

func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	netConn, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = netConn
	size := readBufferSize
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent right after its handshake stay in
		// front of the connection.
		early, _ := brw.Reader.Peek(n)
		r = io.MultiReader(strings.NewReader(string(early)), netConn)
		size = max(size, n)
	}
	u.netConn = netConn
	u.reader = bufio.NewReaderSize(r, size)
	detached := detachedConn{netConn}
	return detached, bufio.NewReadWriter(bufio.NewReaderSize(detached, 16), bufio.NewWriterSize(detached, 16)), nil
}

// detachedConn is what coder/websocket's Conn holds: it reads nothing,
// writes nothing and closes nothing.
type detachedConn struct{ net.Conn }

var errDetached = errors.New("wsroom: connection detached from coder/websocket")

func (detachedConn) Read([]byte) (int, error)         { return 0, errDetached }
func (detachedConn) Write([]byte) (int, error)        { return 0, errDetached }
func (detachedConn) Close() error                     { return nil }
func (detachedConn) SetDeadline(time.Time) error      { return nil }
func (detachedConn) SetReadDeadline(time.Time) error  { return nil }
func (detachedConn) SetWriteDeadline(time.Time) error { return nil }
