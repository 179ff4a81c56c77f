// Command melody is the chat protocol served with github.com/olahol/melody,
// with melody's defaults except MaxMessageSize, raised from 512 bytes to
// 64 KiB so that padded messages fit. melody's hub drops a message for a
// session whose buffer (256 messages) is full and keeps the session.
//
// The personal reply goes through melody's hub (BroadcastFilter) rather than
// Session.Write, so that the sender always receives its broadcast copy first.
//
// Usage:
//
//	melody -addr 127.0.0.1:8080
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/olahol/melody"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	m := melody.New()
	m.Config.MaxMessageSize = 64 << 10

	m.HandleConnect(func(s *melody.Session) {
		if err := m.Broadcast([]byte(clientID(s) + " 进入了聊天室")); err != nil {
			log.Printf("broadcast join: %v", err)
		}
	})
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		id := clientID(s)
		if err := m.Broadcast([]byte(id + " 发送消息:" + string(msg))); err != nil {
			log.Printf("broadcast: %v", err)
			return
		}
		reply := []byte("服务端回复" + id + ":你发送的信息是:" + string(msg))
		if err := m.BroadcastFilter(reply, func(q *melody.Session) bool { return q == s }); err != nil {
			log.Printf("reply: %v", err)
		}
	})
	m.HandleDisconnect(func(s *melody.Session) {
		if err := m.BroadcastOthers([]byte(clientID(s)+" 离开了聊天室"), s); err != nil {
			log.Printf("broadcast leave: %v", err)
		}
	})

	mux := http.NewServeMux()
	mux.HandleFunc("/ws/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := m.HandleRequest(w, r); err != nil {
			log.Printf("upgrade: %v", err)
		}
	})
	mux.Handle("/debug/pprof/goroutine", pprof.Handler("goroutine"))
	mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

func clientID(s *melody.Session) string {
	return s.Request.PathValue("id")
}
