#!/usr/bin/env bash
# cluster.sh measures a room that spans two chatroom processes through
# Redis and through NATS, against the same load on one process.
#
#   ./cluster.sh [-runs 3] [-clients 1000] [-messages 2000] [-quick]
#                [-client wsroom|gorilla] [-out DIR]
#
# Modes: "in-process" (one chatroom, every client on it), "redis" and "nats"
# (two chatrooms sharing the room through the broker, clients alternating
# between them). Servers are pinned to CPU 0 and the load tool to CPU 1;
# the broker (Redis on 127.0.0.1:6379, NATS on 127.0.0.1:4222) runs where
# the OS puts it. -client picks the load tool's WebSocket client. The
# markdown table compares each mode with in-process.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$bench_dir/.." && pwd)

runs=3
clients=1000
messages=2000
client=wsroom
out_dir=""
port=18600

while (($#)); do
	case $1 in
	-runs) runs=$2; shift ;;
	-clients) clients=$2; shift ;;
	-messages) messages=$2; shift ;;
	-quick) runs=1 clients=20 messages=50 ;;
	-client) client=$2; shift ;;
	-out) out_dir=$2; shift ;;
	*) echo "cluster.sh: unknown flag $1" >&2; sed -n '2,13p' "$0" >&2; exit 2 ;;
	esac
	shift
done

log() { echo "cluster.sh: $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wsroom-cluster.XXXXXX")
[[ -n $out_dir ]] && mkdir -p "$out_dir" && work=$out_dir
results=$work/results.tsv
: >"$results"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT

pin_server=()
pin_load=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
	pin_server=(taskset -c 0)
	pin_load=(taskset -c 1)
fi

log "building into $work"
(cd "$bench_dir" && GOWORK=off go build -o "$work/" ./cmd/wsroom-load ./cmd/wsroom-benchtable)
(cd "$repo_dir" && go build -o "$work/chatroom" ./examples/chatroom)

# start runs a chatroom on the next port with the given flags and appends
# its ws:// URL to urls once it accepts connections.
start() {
	port=$((port + 1))
	"${pin_server[@]}" "$work/chatroom" -addr "127.0.0.1:$port" "$@" >>"$work/chatroom.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			urls+="${urls:+,}ws://127.0.0.1:$port"
			return
		fi
		sleep 0.1
	done
	log "chatroom on port $port did not start; its log:"
	cat "$work/chatroom.log" >&2
	exit 1
}

for mode in in-process redis nats; do
	for run in $(seq "$runs"); do
		urls=""
		case $mode in
		in-process) start ;;
		redis) start -broker redis://127.0.0.1:6379 -node-id a && start -broker redis://127.0.0.1:6379 -node-id b ;;
		nats) start -broker nats://127.0.0.1:4222 -node-id a && start -broker nats://127.0.0.1:4222 -node-id b ;;
		esac
		log "$mode run $run: $urls"
		if line=$("${pin_load[@]}" "$work/wsroom-load" -client "$client" -url "$urls" -clients "$clients" -senders 1 \
			-messages "$messages" -timeout 120s); then
			printf 'X1\t%s\t%s\n' "$mode" "$line" >>"$results"
		else
			log "$mode run $run: wsroom-load failed"
		fi
		cleanup
		pids=()
	done
done

log "raw results: $results"
"$work/wsroom-benchtable" -baseline in-process <"$results"
