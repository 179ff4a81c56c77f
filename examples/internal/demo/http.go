package demo

import (
	"context"
	"log/slog"
	"net/http"

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
	if msg.IsText() {
		return true
	}
	m.Disconnect(c, wsroom.Status(websocket.StatusUnsupportedData, "binary messages are not supported"))
	return false
}

// Send queues text to c alone. Failing to queue is no error of the
// server's: c is closing, or was just evicted as a slow consumer.
func Send(m *wsroom.ConnectionManager, log *slog.Logger, c *wsroom.Conn, text string) {
	if err := m.SendPersonal(context.Background(), c, wsroom.Text(text)); err != nil {
		log.Debug("reply not queued", "conn", c.ID(), "err", err)
	}
}
