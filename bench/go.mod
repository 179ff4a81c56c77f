module github.com/wsroom/wsroom/bench

go 1.26

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/olahol/melody v1.1.4
)
