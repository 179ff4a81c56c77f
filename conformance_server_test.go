package wsroom_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
)

// startEchoServer starts a server that echoes every message back to its
// sender, text as text and binary as binary, on the library's public API,
// and returns its address ("host:port"; any path is served). Cleanup shuts
// the manager down and closes the server.
//
// It is the only code of the conformance suite that knows the library's
// API.
func startEchoServer(t *testing.T) (addr string) {
	t.Helper()
	m, err := wsroom.New(wsroom.WithReadLimit(16 << 20))
	if err != nil {
		t.Fatalf("wsroom.New: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = m.Start(w, r, nil, wsroom.Hooks{OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
			_ = m.SendPersonal(context.Background(), c, msg)
		}})
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Logf("echo server: Shutdown: %v", err)
		}
		srv.Close()
	})
	return srv.Listener.Addr().String()
}
