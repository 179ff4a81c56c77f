#!/usr/bin/env bash
# run.sh benchmarks the chat servers against each other; see README.md.
#
#   ./run.sh [-quick] [-scenarios S1,S4] [-servers melody,chatroom] [-runs 3]
#            [-chatroom-flags "-read-limit 65536"] [-out DIR]
#
# Each run starts one server pinned to CPU 0 and the load tool pinned to
# CPU 1, then kills that server by its PID. The markdown table goes to
# standard output; the raw JSON lines stay in DIR/results.tsv.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$bench_dir/.." && pwd)

quick=0
scenarios="S1,S2,S3,S4,S5"
servers="gorillahub,melody,naive,chatroom,chatroom-coalesce"
runs=3
chatroom_flags=""
out_dir=""
port=18400

usage() {
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

while (($#)); do
	case $1 in
	-quick) quick=1 ;;
	-scenarios) scenarios=$2; shift ;;
	-servers) servers=$2; shift ;;
	-runs) runs=$2; shift ;;
	-chatroom-flags) chatroom_flags=$2; shift ;;
	-out) out_dir=$2; shift ;;
	-h | -help | --help) usage ;;
	*) echo "run.sh: unknown flag $1" >&2; usage ;;
	esac
	shift
done

log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# scenario_flags prints the wsroom-load flags of a scenario.
scenario_flags() {
	if ((quick)); then
		case $1 in
		S1) echo "-clients 100 -senders 1 -messages 200 -timeout 60s" ;;
		S2) echo "-clients 100 -senders 5 -messages 50 -timeout 60s" ;;
		S3) echo "-clients 500 -senders 1 -messages 50 -rate 50 -timeout 60s" ;;
		S4) echo "-clients 50 -senders 1 -messages 2000 -size 1024 -silent 1 -timeout 60s" ;;
		S5) echo "-clients 500 -senders 0 -messages 0 -timeout 60s" ;;
		*) return 1 ;;
		esac
		return
	fi
	case $1 in
	S1) echo "-clients 1000 -senders 1 -messages 2000 -timeout 120s" ;;
	S2) echo "-clients 1000 -senders 10 -messages 200 -timeout 120s" ;;
	S3) echo "-clients 10000 -senders 1 -messages 200 -rate 50 -join-timeout 180s -timeout 400s" ;;
	S4) echo "-clients 200 -senders 1 -messages 20000 -size 1024 -silent 1 -timeout 300s" ;;
	S5) echo "-clients 10000 -senders 0 -messages 0 -join-timeout 180s -timeout 400s" ;;
	*) return 1 ;;
	esac
}

IFS=, read -ra scenario_list <<<"$scenarios"
IFS=, read -ra server_list <<<"$servers"
max_clients=0
for s in "${scenario_list[@]}"; do
	flags=$(scenario_flags "$s") || die "unknown scenario $s (want S1..S5)"
	n=$(sed -E 's/.*-clients ([0-9]+).*/\1/' <<<"$flags")
	((n > max_clients)) && max_clients=$n
done

# Each process holds one descriptor per connection plus some slack.
need_fds=$((max_clients + 1024))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < need_fds)); then
	die "open-file limit $(ulimit -n) is below the $need_fds these scenarios need; raise it (ulimit -n $need_fds, or the hard limit in /etc/security/limits.conf) or use -quick"
fi

pin_server=() pin_load=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
	pin_server=(taskset -c 0) pin_load=(taskset -c 1)
else
	log "taskset or a second CPU is missing: running unpinned, numbers are less comparable"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/wsroom-bench.XXXXXX")
[[ -n $out_dir ]] || out_dir=$work
mkdir -p "$out_dir"
results="$out_dir/results.tsv"
: >"$results"
server_pid=""
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	[[ $out_dir == "$work" ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building into $work"
(cd "$bench_dir" && GOWORK=off go build -o "$work/" ./cmd/wsroom-load ./cmd/wsroom-benchtable \
	./servers/gorillahub ./servers/melody ./servers/naive)
available=()
for s in "${server_list[@]}"; do
	case $s in
	chatroom | chatroom-coalesce)
		if [[ -x $work/chatroom ]]; then
			available+=("$s")
		elif [[ ! -d $repo_dir/examples/chatroom ]]; then
			log "skipping chatroom: $repo_dir/examples/chatroom does not exist yet"
		elif ! (cd "$repo_dir" && go build -o "$work/chatroom" ./examples/chatroom) >"$work/chatroom-build.log" 2>&1; then
			log "skipping chatroom: it does not build yet:"
			sed 's/^/    /' "$work/chatroom-build.log" >&2
		else
			available+=("$s")
		fi
		;;
	gorillahub | melody | naive) available+=("$s") ;;
	*) die "unknown server $s" ;;
	esac
done
((${#available[@]})) || die "no server to benchmark"

# wait_listening waits up to 10s for something to accept on 127.0.0.1:$1.
wait_listening() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

for scenario in "${scenario_list[@]}"; do
	flags=$(scenario_flags "$scenario")
	for server in "${available[@]}"; do
		extra=()
		binary=$server
		[[ $server == chatroom* ]] && extra=(-pprof)
		[[ $server == chatroom* && -n $chatroom_flags ]] && read -ra more <<<"$chatroom_flags" && extra+=("${more[@]}")
		# chatroom-coalesce is the chat demo with opt-in coalescing, the
		# same wire semantics as gorilla's hub (newline-joined frames).
		[[ $server == chatroom-coalesce ]] && binary=chatroom extra+=(-coalesce)
		for run in $(seq "$runs"); do
			port=$((port + 1))
			addr=127.0.0.1:$port
			"${pin_server[@]}" "$work/$binary" -addr "$addr" "${extra[@]}" >"$work/$server.log" 2>&1 &
			server_pid=$!
			if ! wait_listening "$port"; then
				log "$server did not start listening on $addr; its log:"
				sed 's/^/    /' "$work/$server.log" >&2
				exit 1
			fi
			# S5 measures idle memory: the servers collect the join storm's
			# garbage first (their pprof heap page with ?gc=1), as a Go
			# runtime does by itself within two minutes.
			gc=()
			[[ $scenario == S5 ]] && gc=(-gc-url "http://$addr/debug/pprof/heap?gc=1")
			log "$scenario $server run $run: wsroom-load $flags"
			# shellcheck disable=SC2086 # flags are words on purpose
			if line=$("${pin_load[@]}" "$work/wsroom-load" -url "ws://$addr" -server-pid "$server_pid" \
				-goroutines-url "http://$addr/debug/pprof/goroutine?debug=1" "${gc[@]}" $flags); then
				printf '%s\t%s\t%s\n' "$scenario" "$server" "$line" >>"$results"
			else
				log "$scenario $server run $run: wsroom-load failed"
			fi
			kill "$server_pid" 2>/dev/null || true
			wait "$server_pid" 2>/dev/null || true
			server_pid=""
		done
	done
done

log "raw results: $results"
"$work/wsroom-benchtable" <"$results"
