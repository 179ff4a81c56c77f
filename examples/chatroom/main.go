// Command chatroom is the tutorial's multi-client chat on wsroom: clients
// connect to /ws/{client_id}, everyone in the room sees who joins, speaks
// and leaves, and each sender also gets a personal reply. Beyond the
// tutorial: rooms (?room=NAME), a member list (GET /members?room=NAME),
// fan-out across processes through Redis or NATS (-broker), and Prometheus
// metrics (-metrics).
//
//	go run ./examples/chatroom [-addr 127.0.0.1:8080] [-broker redis://127.0.0.1:6379] [-metrics 127.0.0.1:9100]
//
// Then open http://127.0.0.1:8080/ in several tabs. See README.md.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/examples/internal/demo"
)

// defaultRoom is the room of a client that names none: the tutorial's one
// room.
const defaultRoom = "chat"

// publishTimeout bounds a broadcast's hand-over to the broker.
const publishTimeout = 5 * time.Second

//go:embed index.html
var pageSource string

var pageTemplate = template.Must(template.New("index.html").Parse(pageSource))

func main() {
	cfg := demo.DefaultConfig()
	cfg.Register(flag.CommandLine)
	brokerURL := flag.String("broker", "", "carry room broadcasts between processes through `URL`: "+brokerForms+" (default: this process only)")
	nodeID := flag.String("node-id", "", "this process's `name` in broker messages; each process sharing a broker needs its own (default: random)")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics, such as 127.0.0.1:9100 (default: none)")
	flag.Parse()
	demo.Main(&cfg, func(log *slog.Logger) (*demo.App, error) {
		var opts []wsroom.Option
		if *nodeID != "" {
			opts = append(opts, wsroom.WithNodeID(*nodeID))
		}
		var met *metrics
		if *metricsAddr != "" {
			met = newMetrics()
			opts = append(opts, met.option())
		}
		closeBroker := func() error { return nil }
		if *brokerURL != "" {
			b, closeFn, err := openBroker(*brokerURL, log)
			if err != nil {
				return nil, err
			}
			opts = append(opts, wsroom.WithBroker(b))
			closeBroker = closeFn
			if met != nil {
				met.watchBroker(b)
			}
		}
		app, err := newApp(&cfg, log, opts...)
		if err != nil {
			_ = closeBroker()
			return nil, err
		}
		app.Close = closeBroker
		if met != nil {
			if _, err := met.serve(*metricsAddr, app, log); err != nil {
				_ = closeBroker()
				return nil, err
			}
		}
		return app, nil
	})
}

// chat is the demo's state: the manager and what it answers with.
type chat struct {
	m    *wsroom.ConnectionManager
	text demo.Strings
	log  *slog.Logger
}

// newApp builds the demo: the page at /, the chat endpoint at
// /ws/{client_id} and the member list at /members. Tests pass extra
// manager options after cfg's.
func newApp(cfg *demo.Config, log *slog.Logger, opts ...wsroom.Option) (*demo.App, error) {
	text, err := cfg.Strings()
	if err != nil {
		return nil, err
	}
	m, err := wsroom.New(append(cfg.Options(log), opts...)...)
	if err != nil {
		return nil, err
	}
	s := &chat{m: m, text: text, log: log}
	var page bytes.Buffer
	// The page refreshes its member list when a line ends like a join or
	// a leave, in whichever language the server speaks.
	if err := pageTemplate.Execute(&page, map[string]string{
		"Joined": text.ChatJoinedSuffix(),
		"Left":   text.ChatLeftSuffix(),
	}); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", demo.Page(page.Bytes()))
	mux.HandleFunc("GET /ws/{client_id}", s.serveWS)
	mux.HandleFunc("GET /members", s.serveMembers)
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
	return &demo.App{Handler: demo.HostCheck(cfg.AllowedHosts(), mux), Manager: m}, nil
}

// roomOf returns the room r asks for, or "" after answering HTTP 400.
func roomOf(w http.ResponseWriter, r *http.Request) string {
	room := r.URL.Query().Get("room")
	if room == "" {
		return defaultRoom
	}
	if len(room) > 255 || !utf8.ValidString(room) {
		http.Error(w, "room: want 1 to 255 bytes of UTF-8", http.StatusBadRequest)
		return ""
	}
	return room
}

// serveWS is the tutorial's websocket_endpoint. The library's goroutine
// reads and calls the hooks, one at a time, so an idle client costs no
// handler goroutine. Start answers a client_id that is not up to 255
// bytes of UTF-8 with HTTP 400, as roomOf does a bad room.
func (s *chat) serveWS(w http.ResponseWriter, r *http.Request) {
	room := roomOf(w, r)
	if room == "" {
		return
	}
	id := r.PathValue("client_id")
	h := wsroom.Hooks{
		// The client joins before its join line goes out, so it sees
		// its own, as in the tutorial.
		OnOpen: func(c *wsroom.Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			defer cancel()
			if err := s.m.Join(ctx, c, room); err != nil {
				s.log.Warn("join failed", "room", room, "err", err)
				_ = s.m.Disconnect(c, websocket.StatusInternalError, "join failed")
				return
			}
			s.broadcast(room, s.text.ChatJoined(id))
		},
		OnMessage: func(c *wsroom.Conn, msg wsroom.Message) {
			if !demo.TextOnly(s.m, c, msg) {
				return
			}
			data := msg.Text()
			// Broadcast queues to the sender too, so its copy comes
			// before the personal reply queued after it.
			s.broadcast(room, s.text.ChatSaid(id, data))
			demo.Send(s.m, s.log, c, s.text.ChatReply(id, data))
		},
		// By now the client has left the room and does not get its own
		// leave line.
		OnClose: func(c *wsroom.Conn, err error) { s.broadcast(room, s.text.ChatLeft(id)) },
	}
	if _, err := s.m.Start(w, r, &wsroom.ConnectOptions{ID: id}, h); err != nil {
		s.log.Debug("not upgraded", "path", r.URL.Path, "err", err)
	}
}

func (s *chat) broadcast(room, text string) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	// An error means the broker did not take the message; this process's
	// members got it all the same.
	if err := s.m.Broadcast(ctx, room, wsroom.Text(text)); err != nil {
		s.log.Warn("broadcast not published", "room", room, "err", err)
	}
}

// serveMembers answers the IDs of the room's members connected to this
// process, sorted, as {"room": NAME, "members": [ID, ...]}. Members on
// other nodes of a broker are not listed.
func (s *chat) serveMembers(w http.ResponseWriter, r *http.Request) {
	room := roomOf(w, r)
	if room == "" {
		return
	}
	ids := []string{}
	for _, c := range s.m.Members(room) {
		ids = append(ids, c.ID())
	}
	slices.Sort(ids)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		Room    string   `json:"room"`
		Members []string `json:"members"`
	}{room, ids})
}
