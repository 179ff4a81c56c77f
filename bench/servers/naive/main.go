// Command naive is a direct port of the FastAPI tutorial's ConnectionManager
// to github.com/coder/websocket: a slice of connections under one lock, and a
// broadcast that writes to each connection in turn while holding that lock,
// like the tutorial's
//
//	for connection in self.active_connections:
//	    await connection.send_text(message)
//
// so one peer that stops reading stalls the whole room. Writes have no
// timeout, as in the tutorial. The read limit is 64 KiB (coder/websocket's
// default is 32 KiB) to match the other reference servers.
//
// Usage:
//
//	naive -addr 127.0.0.1:8080
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"

	"github.com/coder/websocket"
)

// connectionManager is the tutorial's ConnectionManager.
type connectionManager struct {
	mu     sync.Mutex
	active []*websocket.Conn
}

func (m *connectionManager) connect(c *websocket.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active = append(m.active, c)
}

func (m *connectionManager) disconnect(c *websocket.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.Index(m.active, c); i >= 0 {
		m.active = slices.Delete(m.active, i, i+1)
	}
}

// broadcast writes message to every connection in turn, under the lock.
// A failed write is logged and skipped; the connection's own handler
// removes it when its read fails.
func (m *connectionManager) broadcast(ctx context.Context, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.active {
		if err := c.Write(ctx, websocket.MessageText, []byte(message)); err != nil {
			log.Printf("broadcast: %v", err)
		}
	}
}

func (m *connectionManager) handle(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		log.Printf("accept: %v", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 10)
	// The request context is not cancelled when the connection is hijacked;
	// a fresh one makes the absence of any write timeout explicit.
	ctx := context.Background()

	m.connect(c)
	m.broadcast(ctx, id+" 进入了聊天室")
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			if err := c.Close(websocket.StatusUnsupportedData, "text messages only"); err != nil {
				log.Printf("close %s: %v", id, err)
			}
			break
		}
		m.broadcast(ctx, id+" 发送消息:"+string(data))
		if err := c.Write(ctx, websocket.MessageText, []byte("服务端回复"+id+":你发送的信息是:"+string(data))); err != nil {
			break
		}
	}
	m.disconnect(c)
	m.broadcast(ctx, id+" 离开了聊天室")
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	var manager connectionManager
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/{id}", manager.handle)
	mux.Handle("/debug/pprof/goroutine", pprof.Handler("goroutine"))
	mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
