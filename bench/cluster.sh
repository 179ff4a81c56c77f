#!/usr/bin/env bash
# cluster.sh measures a room that spans two chatroom processes through a
# broker, against the same load on one process; see README.md.
#
#   ./cluster.sh [-modes in-process,redis,nats,redis-cluster,nats-cluster]
#                [-runs 3] [-clients 1000] [-messages 2000] [-quick]
#                [-client wsroom|gorilla] [-out DIR] [-charts DIR]
#
# in-process: one chatroom. redis, nats: two chatrooms on the Redis at
# 127.0.0.1:6379 or the NATS at 127.0.0.1:4222 that are already running.
# redis-cluster, nats-cluster: two chatrooms on a private Redis Cluster
# (3 masters + 3 replicas) or NATS cluster (3 routed servers) that the
# script starts on free loopback ports and kills by PID when the mode ends.
# Clients alternate between the two chatrooms. redis or nats without its
# server, and a cluster mode whose cluster or chatrooms do not start (the
# demo may not accept its -broker URL yet), are skipped with the reason;
# the others go on. The table compares each mode with in-process; the raw
# JSON lines stay in DIR/results.tsv; -charts DIR also draws DIR/X1.svg.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$bench_dir/.." && pwd)

all_modes="in-process,redis,nats,redis-cluster,nats-cluster"
modes=$all_modes
runs=""
clients=""
messages=""
quick=0
client=wsroom
out_dir=""
charts_dir=""

usage() {
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while (($#)); do
	case $1 in
	-modes) modes=$2; shift ;;
	-runs) runs=$2; shift ;;
	-clients) clients=$2; shift ;;
	-messages) messages=$2; shift ;;
	-quick) quick=1 ;;
	-client) client=$2; shift ;;
	-out) out_dir=$2; shift ;;
	-charts) charts_dir=$2; shift ;;
	-h | -help | --help) usage ;;
	*) echo "cluster.sh: unknown flag $1" >&2; usage ;;
	esac
	shift
done

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# -quick sets what was not given explicitly.
if ((quick)); then
	: "${runs:=1}" "${clients:=20}" "${messages:=50}"
	load_timeout=60s
else
	: "${runs:=3}" "${clients:=1000}" "${messages:=2000}"
	load_timeout=120s
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-runs $runs: want a positive number"
[[ $clients =~ ^[1-9][0-9]*$ ]] || die "-clients $clients: want a positive number"
[[ $messages =~ ^[0-9]+$ ]] || die "-messages $messages: want a number"
case $client in
wsroom | gorilla) ;;
*) die "unknown client $client (want wsroom or gorilla)" ;;
esac
[[ -z $charts_dir ]] || mkdir -p "$charts_dir" || die "-charts $charts_dir: cannot create it"
IFS=, read -ra mode_list <<<"$modes"
((${#mode_list[@]})) || die "-modes is empty"
for m in "${mode_list[@]}"; do
	[[ ,$all_modes, == *",$m,"* ]] || die "unknown mode $m (want some of $all_modes)"
done

# Each chatroom and the load tool hold one descriptor per connection.
need_fds=$((clients + 1024))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < need_fds)); then
	die "open-file limit $(ulimit -n) is below the $need_fds that $clients clients need; raise it or use fewer -clients"
fi

pin_server=() pin_load=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
	pin_server=(taskset -c 0) pin_load=(taskset -c 1)
else
	log "taskset or a second CPU is missing: running unpinned, numbers are less comparable"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/wsroom-cluster.XXXXXX")
[[ -n $out_dir ]] || out_dir=$work
mkdir -p "$out_dir"
results=$out_dir/results.tsv
: >"$results"

# Every process the script starts runs under timeout(1) with this bound
# (seconds), so even a script killed with SIGKILL leaves nothing behind
# for long: a mode's runs plus their start-up and slack.
lifetime=$((runs * (${load_timeout%s} + 60) + 120))

chat_pids=()   # the chatrooms of the current run
broker_pids=() # the servers of the current private cluster
broker_dir=""  # their data directory
cleanup() {
	stop "${chat_pids[@]}" "${broker_pids[@]}"
	chat_pids=() broker_pids=()
	[[ -z $broker_dir ]] || rm -rf "$broker_dir"
	[[ $out_dir == "$work" ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# alive says whether process $1 still runs (a zombie does not).
alive() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	[[ $stat != Z* ]]
}

# spawn LOG CMD... starts CMD in the background under timeout(1), its
# output appended to LOG, and sets spawned to the PID of the timeout
# process: SIGTERM to it reaches CMD, followed by SIGKILL 5 s later if CMD
# is still there. The job is disowned, so bash does not report its end.
spawn() {
	local log_file=$1
	shift
	timeout -k 5 "$lifetime" "$@" >>"$log_file" 2>&1 &
	spawned=$!
	disown "$spawned"
}

# stop PID... sends each process SIGTERM, waits up to 10 s for all of them
# to end, and SIGKILLs what is left, with the child timeout(1) runs.
stop() {
	local pid children
	(($#)) || return 0
	for pid; do kill "$pid" 2>/dev/null || true; done
	for _ in $(seq 100); do
		for pid; do alive "$pid" && break; pid=""; done
		[[ -n $pid ]] || return 0
		sleep 0.1
	done
	for pid; do
		alive "$pid" || continue
		log "process $pid did not end within 10 s of SIGTERM: sending SIGKILL"
		children=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
		# shellcheck disable=SC2086 # a list of PIDs
		kill -KILL $children "$pid" 2>/dev/null || true
	done
}

# listening says whether something accepts on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# take_port VAR [OFFSET] sets VAR to the next port from 18600 up that
# nothing on this host uses, nor (with OFFSET) port+OFFSET, and that the
# script has not handed out before.
port_cursor=18600
given_ports=" "
port_free() {
	(($1 < 65536)) || return 1
	[[ $given_ports != *" $1 "* ]] || return 1
	if command -v ss >/dev/null; then
		[[ -z $(ss -Htan "sport = :$1") ]]
	else
		if listening "$1"; then return 1; fi
	fi
}
take_port() {
	local _tp_var=$1 _tp_offset=${2:-0} _tp_p
	for ((_tp_p = port_cursor + 1; _tp_p < 55000; _tp_p++)); do
		if port_free "$_tp_p" && { ((_tp_offset == 0)) || port_free $((_tp_p + _tp_offset)); }; then
			given_ports+="$_tp_p "
			((_tp_offset == 0)) || given_ports+="$((_tp_p + _tp_offset)) "
			port_cursor=$_tp_p
			printf -v "$_tp_var" %s "$_tp_p"
			return 0
		fi
	done
	die "no free port left above 18600"
}

log "building into $work"
(cd "$bench_dir" && GOWORK=off go build -o "$work/" ./cmd/wsroom-load ./cmd/wsroom-benchtable)
if ! (cd "$repo_dir" && go build -o "$work/chatroom" ./examples/chatroom) >"$work/chatroom.build.log" 2>&1; then
	sed 's/^/    /' "$work/chatroom.build.log" >&2
	die "examples/chatroom does not build (above)"
fi

# start_chatroom LOG FLAGS... runs a chatroom on a free port and appends its
# ws:// URL to urls once it accepts connections; it fails, with its log
# shown, if the chatroom exits or does not listen within 10 s.
start_chatroom() {
	local log_file=$1 port
	shift
	take_port port
	spawn "$log_file" "${pin_server[@]}" "$work/chatroom" -addr "127.0.0.1:$port" "$@"
	chat_pids+=("$spawned")
	for _ in $(seq 100); do
		if listening "$port"; then
			urls+="${urls:+,}ws://127.0.0.1:$port"
			return 0
		fi
		alive "$spawned" || break
		sleep 0.1
	done
	log "the chatroom with $* did not start listening on 127.0.0.1:$port; its log:"
	sed 's/^/    /' "$log_file" >&2
	return 1
}

# check_tools TOOL... fails with a message naming the first missing tool.
check_tools() {
	local t
	for t; do
		command -v "$t" >/dev/null || { log "$t is not installed"; return 1; }
	done
}

# redis_cluster_start starts 6 redis-server processes on free ports and
# makes them a cluster of 3 masters with one replica each; it sets
# broker_pids, broker_dir and cluster_ports (the masters' ports first).
redis_cluster_start() {
	local p i ok pid
	check_tools redis-server redis-cli || return 1
	broker_dir=$work/redis-cluster
	rm -rf "$broker_dir" && mkdir -p "$broker_dir"
	cluster_ports=()
	for i in 1 2 3 4 5 6; do
		take_port p 10000 # the cluster bus listens on port+10000
		cluster_ports+=("$p")
		spawn "$broker_dir/redis-$p.log" redis-server --port "$p" --bind 127.0.0.1 \
			--cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 2000 \
			--appendonly no --save "" --dir "$broker_dir" --daemonize no --repl-diskless-sync-delay 0
		broker_pids+=("$spawned")
	done
	for i in "${!cluster_ports[@]}"; do
		p=${cluster_ports[i]} pid=${broker_pids[i]} ok=0
		for _ in $(seq 100); do
			[[ $(timeout 2 redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null) == PONG ]] && ok=1 && break
			alive "$pid" || break
			sleep 0.1
		done
		if ((!ok)); then
			log "redis-server on 127.0.0.1:$p exited or did not answer PING within 10 s; its log:"
			sed 's/^/    /' "$broker_dir/redis-$p.log" >&2
			return 1
		fi
	done
	local addrs=("${cluster_ports[@]/#/127.0.0.1:}")
	if ! timeout 30 redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
		>"$broker_dir/create.log" 2>&1; then
		log "redis-cli --cluster create failed; its output:"
		sed 's/^/    /' "$broker_dir/create.log" >&2
		return 1
	fi
	# Ready: every node says cluster_state:ok, and three are masters and
	# three replicas whose link to their master is up (the initial sync is
	# over, so it does not run during the measurement).
	local role masters replicas
	for _ in $(seq 300); do
		ok=1 masters=0 replicas=0
		for p in "${cluster_ports[@]}"; do
			timeout 2 redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | tr -d '\r' |
				grep -qx cluster_state:ok || { ok=0 && break; }
			role=$(timeout 2 redis-cli -h 127.0.0.1 -p "$p" role 2>/dev/null | tr -d '\r' | tr '\n' ' ') || true
			case $role in
			"master "*) masters=$((masters + 1)) ;;
			"slave "*" connected "*) replicas=$((replicas + 1)) ;;
			esac
		done
		((ok && masters == 3 && replicas == 3)) && return 0
		sleep 0.1
	done
	log "the Redis Cluster on ports ${cluster_ports[*]} was not ready within 30 s (cluster_state:ok everywhere: $ok, masters: $masters, replicas in sync: $replicas)"
	return 1
}

# nats_cluster_start starts 3 nats-server processes routed to each other
# and waits until each has routes to the 2 others; it sets broker_pids,
# broker_dir, cluster_ports (client ports) and monitor_ports.
nats_cluster_start() {
	local i j p c m routes remotes ok
	local route_ports=()
	check_tools nats-server curl || return 1
	broker_dir=$work/nats-cluster
	rm -rf "$broker_dir" && mkdir -p "$broker_dir"
	cluster_ports=() monitor_ports=()
	for i in 0 1 2; do
		take_port p && take_port c && take_port m
		cluster_ports+=("$p") route_ports+=("$c") monitor_ports+=("$m")
	done
	for i in 0 1 2; do
		routes=""
		for j in 0 1 2; do
			((i == j)) || routes+="${routes:+,}nats://127.0.0.1:${route_ports[j]}"
		done
		spawn "$broker_dir/nats-$i.log" nats-server -a 127.0.0.1 -p "${cluster_ports[i]}" \
			-n "wsroom-bench-$i" --cluster_name "wsroom-bench-$$" -cluster "nats://127.0.0.1:${route_ports[i]}" \
			-routes "$routes" -m "${monitor_ports[i]}"
		broker_pids+=("$spawned")
	done
	for _ in $(seq 200); do
		ok=1
		for i in 0 1 2; do
			alive "${broker_pids[i]}" || { ok=-1 && break; }
			# Count distinct peers: since 2.10 each peer has a pool of routes.
			remotes=$(curl -s --max-time 1 "http://127.0.0.1:${monitor_ports[i]}/routez" 2>/dev/null |
				grep -o '"remote_id": *"[^"]*"' | sort -u | wc -l) || remotes=0
			((remotes >= 2)) || { ok=0 && break; }
		done
		((ok == 1)) && return 0
		((ok == -1)) && break
		sleep 0.1
	done
	log "the NATS cluster on ports ${cluster_ports[*]} did not form (a server exited, or not every one had routes to the 2 others within 20 s); logs:"
	for i in 0 1 2; do sed "s/^/    nats-$i: /" "$broker_dir/nats-$i.log" >&2; done
	return 1
}

# broker_stop kills the private cluster's servers by PID and removes their
# data directory.
broker_stop() {
	stop "${broker_pids[@]}"
	broker_pids=()
	[[ -z $broker_dir ]] || rm -rf "$broker_dir"
	broker_dir=""
}

# nats_placement prints, for each server of the NATS cluster, how many
# clients it has (the two chatrooms, once connected).
nats_placement() {
	local i n
	for i in 0 1 2; do
		n=$(curl -s --max-time 1 "http://127.0.0.1:${monitor_ports[i]}/connz" 2>/dev/null |
			sed -n 's/.*"num_connections": *\([0-9]*\).*/\1/p') || true
		printf '%s ' "${n:-0}"
	done
}

skipped=()
notes=()
for mode in "${mode_list[@]}"; do
	# flags_a and flags_b are the two chatrooms' broker flags; none means
	# one chatroom.
	flags_a=() flags_b=()
	case $mode in
	in-process) ;;
	redis | nats)
		if [[ $mode == redis ]]; then bport=6379; else bport=4222; fi
		if ! listening "$bport"; then
			log "$mode: nothing accepts on 127.0.0.1:$bport; skipping $mode"
			skipped+=("$mode (no $mode server on 127.0.0.1:$bport)")
			continue
		fi
		flags_a=(-broker "$mode://127.0.0.1:$bport" -node-id a)
		flags_b=(-broker "$mode://127.0.0.1:$bport" -node-id b)
		;;
	redis-cluster)
		log "$mode: starting a Redis Cluster of 3 masters + 3 replicas"
		if ! redis_cluster_start; then
			broker_stop
			skipped+=("$mode (the Redis Cluster did not start, see above)")
			continue
		fi
		log "$mode: cluster_state:ok on 127.0.0.1:${cluster_ports[*]} (PIDs ${broker_pids[*]})"
		seeds=127.0.0.1:${cluster_ports[0]},127.0.0.1:${cluster_ports[1]},127.0.0.1:${cluster_ports[2]}
		flags_a=(-broker "redis+cluster://$seeds" -node-id a)
		flags_b=(-broker "redis+cluster://$seeds" -node-id b)
		;;
	nats-cluster)
		log "$mode: starting a NATS cluster of 3 servers"
		if ! nats_cluster_start; then
			broker_stop
			skipped+=("$mode (the NATS cluster did not start, see above)")
			continue
		fi
		log "$mode: 3 servers routed to each other on 127.0.0.1:${cluster_ports[*]} (PIDs ${broker_pids[*]})"
		# The same servers, listed from a different one for each chatroom.
		p1=127.0.0.1:${cluster_ports[0]} p2=127.0.0.1:${cluster_ports[1]} p3=127.0.0.1:${cluster_ports[2]}
		flags_a=(-broker "nats://$p1,$p2,$p3" -node-id a)
		flags_b=(-broker "nats://$p2,$p3,$p1" -node-id b)
		;;
	esac
	for run in $(seq "$runs"); do
		urls="" started=1
		chat_log=$work/chatroom-$mode-$run
		if ((${#flags_a[@]})); then
			start_chatroom "$chat_log-a.log" "${flags_a[@]}" && start_chatroom "$chat_log-b.log" "${flags_b[@]}" || started=0
		else
			start_chatroom "$chat_log.log" || started=0
		fi
		if ((!started)); then
			stop "${chat_pids[@]}"
			chat_pids=()
			case $mode in
			*-cluster)
				log "$mode: the chatroom did not start (the demo may not accept this -broker URL form yet); skipping $mode"
				skipped+=("$mode (the chatroom did not start with ${flags_a[1]}, see above)")
				break
				;;
			*) die "$mode: the chatroom did not start" ;;
			esac
		fi
		if [[ $mode == nats-cluster ]]; then
			# Where did each chatroom's NATS connection land?
			for _ in $(seq 50); do
				read -ra per_server <<<"$(nats_placement)"
				((per_server[0] + per_server[1] + per_server[2] >= 2)) && break
				sleep 0.1
			done
			placement="clients per NATS server: ${per_server[*]}"
			if ((per_server[0] > 1 || per_server[1] > 1 || per_server[2] > 1)); then
				placement+=" (both chatrooms on one server: the NATS client shuffles the list it is given)"
				notes+=("$mode run $run: both chatrooms' NATS connections on one server")
			fi
			log "$mode run $run: $placement"
		fi
		log "$mode run $run: $urls"
		if line=$("${pin_load[@]}" "$work/wsroom-load" -client "$client" -url "$urls" -clients "$clients" -senders 1 \
			-messages "$messages" -timeout "$load_timeout"); then
			printf 'X1\t%s\t%s\n' "$mode" "$line" >>"$results"
		else
			log "$mode run $run: wsroom-load failed"
			notes+=("$mode run $run: wsroom-load failed")
		fi
		stop "${chat_pids[@]}"
		chat_pids=()
	done
	if ((${#broker_pids[@]})); then
		log "$mode: stopping the cluster (PIDs ${broker_pids[*]})"
		broker_stop
	fi
done

log "raw results: $results"
# Every bar of a chart is wsroom's; the notes and skips are shown even if
# the table or the charts fail (no mode ran: nothing to draw).
table_flags=()
[[ -z $charts_dir ]] || table_flags=(-charts "$charts_dir" -highlight '*' -category mode)
table_status=0
"$work/wsroom-benchtable" -baseline in-process "${table_flags[@]}" <"$results" || table_status=$?
[[ -z $charts_dir ]] || ((table_status)) || log "charts: $charts_dir/X1.svg"
for n in "${notes[@]}"; do log "note: $n"; done
for s in "${skipped[@]}"; do log "skipped: $s"; done
exit "$table_status"
