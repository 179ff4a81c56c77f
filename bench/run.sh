#!/usr/bin/env bash
# run.sh benchmarks the chat servers against each other; see README.md.
#
#   ./run.sh [-quick] [-scenarios S1,S4] [-servers melody,chatroom] [-runs 3]
#            [-client wsroom|gorilla] [-chatroom-flags "-read-limit 65536"]
#            [-echo-flags "-write-timeout 30s"] [-baseline-rev REV] [-out DIR]
#            [-charts DIR]
#
# Each run starts one server pinned to CPU 0 and the load tool pinned to
# CPU 1, then kills that server by its PID. S1..S5 run against the chat
# servers, S6 against echo. -baseline-rev REV also builds the demos from git
# revision REV and runs them as chatroom@REV, chatroom-coalesce@REV and
# echo@REV. The markdown tables go to standard output; the raw JSON lines
# stay in DIR/results.tsv. -charts DIR also draws DIR/SCENARIO.svg for each
# chat scenario from them.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$bench_dir/.." && pwd)

quick=0
scenarios="S1,S2,S3,S4,S5,S6"
servers="gorillahub,melody,naive,chatroom,chatroom-coalesce,echo"
runs=3
client=wsroom
chatroom_flags=""
echo_flags=""
baseline_rev=""
out_dir=""
charts_dir=""
port=18400

usage() {
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

while (($#)); do
	case $1 in
	-quick) quick=1 ;;
	-scenarios) scenarios=$2; shift ;;
	-servers) servers=$2; shift ;;
	-runs) runs=$2; shift ;;
	-client) client=$2; shift ;;
	-chatroom-flags) chatroom_flags=$2; shift ;;
	-echo-flags) echo_flags=$2; shift ;;
	-baseline-rev) baseline_rev=$2; shift ;;
	-out) out_dir=$2; shift ;;
	-charts) charts_dir=$2; shift ;;
	-h | -help | --help) usage ;;
	*) echo "run.sh: unknown flag $1" >&2; usage ;;
	esac
	shift
done

log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 1; }

case $client in
wsroom | gorilla) ;;
*) die "unknown client $client (want wsroom or gorilla)" ;;
esac
[[ -z $charts_dir ]] || mkdir -p "$charts_dir" || die "-charts $charts_dir: cannot create it"
if [[ -n $baseline_rev ]]; then
	git -C "$repo_dir" rev-parse --verify --quiet "$baseline_rev^{commit}" >/dev/null ||
		die "-baseline-rev $baseline_rev: not a commit of $repo_dir"
fi

# scenario_flags prints the wsroom-load flags of a scenario.
scenario_flags() {
	if ((quick)); then
		case $1 in
		S1) echo "-clients 100 -senders 1 -messages 200 -timeout 60s" ;;
		S2) echo "-clients 100 -senders 5 -messages 50 -timeout 60s" ;;
		S3) echo "-clients 500 -senders 1 -messages 50 -rate 50 -timeout 60s" ;;
		S4) echo "-clients 50 -senders 1 -messages 2000 -size 1024 -silent 1 -timeout 60s" ;;
		S5) echo "-clients 500 -senders 0 -messages 0 -timeout 60s" ;;
		S6) echo "-mode echo -clients 4 -size 2097152 -read-rate 1048576 -rcvbuf 131072 -timeout 20s" ;;
		*) return 1 ;;
		esac
		return
	fi
	case $1 in
	S1) echo "-clients 1000 -senders 1 -messages 2000 -timeout 120s" ;;
	S2) echo "-clients 1000 -senders 10 -messages 200 -timeout 120s" ;;
	S3) echo "-clients 10000 -senders 1 -messages 200 -rate 50 -join-timeout 180s -timeout 400s" ;;
	S4) echo "-clients 200 -senders 1 -messages 20000 -size 1024 -silent 1 -silent-wait 30s -timeout 300s" ;;
	S5) echo "-clients 10000 -senders 0 -messages 0 -join-timeout 180s -timeout 400s" ;;
	S6) echo "-mode echo -clients 20 -size 16777216 -read-rate 32768 -rcvbuf 131072 -timeout 60s" ;;
	*) return 1 ;;
	esac
}

IFS=, read -ra scenario_list <<<"$scenarios"
IFS=, read -ra server_list <<<"$servers"
max_clients=0
for s in "${scenario_list[@]}"; do
	flags=$(scenario_flags "$s") || die "unknown scenario $s (want S1..S6)"
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
rev_src=""
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	[[ -z $rev_src ]] || rm -rf "$rev_src"
	[[ $out_dir == "$work" ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building into $work"
(cd "$bench_dir" && GOWORK=off go build -o "$work/" ./cmd/wsroom-load ./cmd/wsroom-benchtable \
	./servers/gorillahub ./servers/melody ./servers/naive)

# build_demo DEMO SRC_DIR OUT_DIR LABEL builds SRC_DIR/examples/DEMO into
# OUT_DIR/DEMO once; it fails, with the build error shown, when the demo is
# missing or does not build.
build_demo() {
	local demo=$1 src=$2 out=$3 label=$4
	[[ -x $out/$demo ]] && return 0
	[[ -f $out/$demo.failed ]] && return 1
	mkdir -p "$out"
	if [[ ! -d $src/examples/$demo ]]; then
		log "skipping $label: examples/$demo does not exist there"
	elif ! (cd "$src" && go build -o "$out/$demo" "./examples/$demo") >"$out/$demo.build.log" 2>&1; then
		log "skipping $label: it does not build:"
		sed 's/^/    /' "$out/$demo.build.log" >&2
	else
		return 0
	fi
	: >"$out/$demo.failed"
	return 1
}

# The demo-based servers of the list also run as NAME@REV, built from
# git revision REV (a clean export of it, removed afterwards).
rev_bin=$work/rev
if [[ -n $baseline_rev ]]; then
	rev_src=$(mktemp -d "${TMPDIR:-/tmp}/wsroom-bench-rev.XXXXXX")
	log "exporting $baseline_rev into $rev_src"
	git -C "$repo_dir" archive --format=tar "$baseline_rev" | tar -x -C "$rev_src"
fi

# demo_of prints the examples/ directory a server is built from, if any.
demo_of() {
	case ${1%@*} in
	chatroom | chatroom-coalesce) echo chatroom ;;
	echo) echo echo ;;
	esac
}

available=()
for s in "${server_list[@]}"; do
	case $s in
	gorillahub | melody | naive) available+=("$s"); continue ;;
	chatroom | chatroom-coalesce | echo) ;;
	*) die "unknown server $s" ;;
	esac
	demo=$(demo_of "$s")
	build_demo "$demo" "$repo_dir" "$work" "$s" && available+=("$s")
	if [[ -n $baseline_rev ]]; then
		build_demo "$demo" "$rev_src" "$rev_bin" "$s@$baseline_rev" && available+=("$s@$baseline_rev")
	fi
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

# is_echo says whether a server is the echo demo (S6) rather than a chat
# server (S1..S5).
is_echo() { [[ ${1%@*} == echo ]]; }

for scenario in "${scenario_list[@]}"; do
	flags=$(scenario_flags "$scenario")
	ran=0
	for server in "${available[@]}"; do
		if [[ $scenario == S6 ]]; then is_echo "$server" || continue; else ! is_echo "$server" || continue; fi
		ran=1
		base=${server%@*}
		bin_dir=$work
		[[ $server == *@* ]] && bin_dir=$rev_bin
		binary=$bin_dir/$(demo_of "$server")
		[[ $base == gorillahub || $base == melody || $base == naive ]] && binary=$work/$base
		log_file=$work/${server//[^A-Za-z0-9@._-]/_}.log
		extra=()
		[[ $base == chatroom* ]] && extra=(-pprof)
		[[ $base == chatroom* && -n $chatroom_flags ]] && read -ra more <<<"$chatroom_flags" && extra+=("${more[@]}")
		# chatroom-coalesce is the chat demo with opt-in coalescing, the
		# same wire semantics as gorilla's hub (newline-joined frames).
		[[ $base == chatroom-coalesce ]] && extra+=(-coalesce)
		# The echo demo takes S6's 16 MiB messages.
		[[ $base == echo ]] && extra=(-read-limit 17000000)
		[[ $base == echo && -n $echo_flags ]] && read -ra more <<<"$echo_flags" && extra+=("${more[@]}")
		for run in $(seq "$runs"); do
			port=$((port + 1))
			addr=127.0.0.1:$port
			"${pin_server[@]}" "$binary" -addr "$addr" "${extra[@]}" >"$log_file" 2>&1 &
			server_pid=$!
			if ! wait_listening "$port"; then
				log "$server did not start listening on $addr; its log:"
				sed 's/^/    /' "$log_file" >&2
				kill "$server_pid" 2>/dev/null || true
				wait "$server_pid" 2>/dev/null || true
				server_pid=""
				# A revision's demo may lack a flag this script passes.
				[[ $server == *@* ]] && break
				exit 1
			fi
			# S5 measures idle memory: the servers collect the join storm's
			# garbage first (their pprof heap page with ?gc=1), as a Go
			# runtime does by itself within two minutes. The echo demo
			# serves no pprof pages.
			probes=(-goroutines-url "http://$addr/debug/pprof/goroutine?debug=1")
			is_echo "$server" && probes=()
			[[ $scenario == S5 ]] && probes+=(-gc-url "http://$addr/debug/pprof/heap?gc=1")
			log "$scenario $server run $run: wsroom-load -client $client $flags"
			# shellcheck disable=SC2086 # flags are words on purpose
			if line=$("${pin_load[@]}" "$work/wsroom-load" -client "$client" -url "ws://$addr" -server-pid "$server_pid" \
				"${probes[@]}" $flags); then
				printf '%s\t%s\t%s\n' "$scenario" "$server" "$line" >>"$results"
			else
				log "$scenario $server run $run: wsroom-load failed"
			fi
			kill "$server_pid" 2>/dev/null || true
			wait "$server_pid" 2>/dev/null || true
			server_pid=""
		done
	done
	((ran)) || log "$scenario: no server for it among ${available[*]} (S1..S5 need a chat server, S6 echo)"
done

log "raw results: $results"
table_flags=()
[[ -z $charts_dir ]] || table_flags=(-charts "$charts_dir")
"$work/wsroom-benchtable" "${table_flags[@]}" <"$results"
[[ -z $charts_dir ]] || log "charts: $charts_dir/*.svg"
