package demo

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
)

// Page returns a handler that serves an HTML page.
func Page(html []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(html)
	}
}

// TextOnly reports whether msg is a text message. A binary message closes
// c with 1003 (Unsupported Data): the demos' endpoints speak text only,
// and the tutorial's apps crashed on binary frames instead.
func TextOnly(m *wsroom.ConnectionManager, c *wsroom.Conn, msg wsroom.Message) bool {
	if msg.Type() == wsroom.MessageText {
		return true
	}
	_ = m.Disconnect(c, websocket.StatusUnsupportedData, "binary messages are not supported")
	return false
}

// HostCheck answers HTTP 403 to a request whose Host header, without its
// port, matches none of hosts (path.Match patterns, case-insensitively),
// before next sees it: every route of a demo, not only its WebSocket,
// which the manager's WithAllowedHosts guards too.
func HostCheck(hosts []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		for _, p := range hosts {
			if ok, _ := path.Match(strings.ToLower(p), host); ok {
				next.ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, "host not allowed", http.StatusForbidden)
	})
}

// Send queues text to c alone. Failing to queue is no error of the
// server's: c is closing, or was just evicted as a slow consumer.
func Send(m *wsroom.ConnectionManager, log *slog.Logger, c *wsroom.Conn, text string) {
	if err := m.SendPersonal(context.Background(), c, wsroom.Text(text)); err != nil {
		log.Debug("reply not queued", "conn", c.ID(), "err", err)
	}
}
