module github.com/wsroom/wsroom/bench

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/olahol/melody v1.1.4
	github.com/wsroom/wsroom v0.0.0
	golang.org/x/sys v0.48.0
)

replace github.com/wsroom/wsroom => ../
