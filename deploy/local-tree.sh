#!/usr/bin/env bash
# Runs the topology of deploy/compose.yaml as processes on this host, on
# 127.0.0.1: a root group of three members, two replicas, a relay and two
# proxies of data center dc1. tests/topology_test.go starts the same tree
# and runs the consistency checker over it.
#
#   deploy/local-tree.sh start    # builds bin/argent if missing
#   deploy/local-tree.sh status   # argent status --tree
#   deploy/local-tree.sh stop
#
# ARGENT (the binary, default bin/argent), DATA (default ./argent-tree) and
# PORT (the first port, default 7400) change where it runs. Ports: roots
# PORT..PORT+2, replicas PORT+10 and PORT+11, relay PORT+20, proxies PORT+30
# and PORT+31 (the ports deploy/compose.yaml publishes).
set -euo pipefail
cd "$(dirname "$0")/.."

ARGENT=${ARGENT:-bin/argent}
DATA=${DATA:-./argent-tree}
PORT=${PORT:-7400}
H=127.0.0.1

r1=$H:$PORT r2=$H:$((PORT + 1)) r3=$H:$((PORT + 2))
rep1=$H:$((PORT + 10)) rep2=$H:$((PORT + 11))
relay=$H:$((PORT + 20))
px1=$H:$((PORT + 30)) px2=$H:$((PORT + 31))
peers="1=$r1,2=$r2,3=$r3"

die() { echo "local-tree: $*" >&2; exit 1; }

# run NAME ARGS...: starts one node in the background, its output in
# DATA/NAME.log and its PID in DATA/NAME.pid.
run() {
	local name=$1
	shift
	"$ARGENT" "$@" >"$DATA/$name.log" 2>&1 &
	echo $! >"$DATA/$name.pid"
}

# wait_ready ADDR: waits up to 30 s for the node's /v1/status.
wait_ready() {
	for _ in $(seq 300); do
		"$ARGENT" status --server "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$1 not ready after 30s (see $DATA/*.log)"
}

start() {
	[ -x "$ARGENT" ] || make build >/dev/null || die "cannot build $ARGENT"
	mkdir -p "$DATA"
	for f in "$DATA"/*.pid; do
		[ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && die "already running (pid file $f); stop it first"
	done
	run root1 root --data "$DATA/root1" --listen "$r1" --id 1 --peers "$peers"
	run root2 root --data "$DATA/root2" --listen "$r2" --id 2 --peers "$peers"
	run root3 root --data "$DATA/root3" --listen "$r3" --id 3 --peers "$peers"
	wait_ready "$r1" && wait_ready "$r2" && wait_ready "$r3"
	run replica1 replica --data "$DATA/replica1" --listen "$rep1" --upstream "$r1,$r2,$r3" --dc dc1
	run replica2 replica --data "$DATA/replica2" --listen "$rep2" --upstream "$r2,$r3,$r1" --dc dc1
	wait_ready "$rep1" && wait_ready "$rep2"
	run relay relay --listen "$relay" --upstream "$rep1,$rep2" --dc dc1
	wait_ready "$relay"
	run proxy1 proxy --data "$DATA/proxy1" --listen "$px1" --upstream "$relay" --dc dc1 --dc-peers "$px1,$px2" --cache-size 64MiB
	run proxy2 proxy --data "$DATA/proxy2" --listen "$px2" --upstream "$relay" --dc dc1 --dc-peers "$px1,$px2" --cache-size 64MiB
	wait_ready "$px1" && wait_ready "$px2"
	echo "tree running; status page: http://$r1/ui"
	"$ARGENT" status --tree --server "$r1"
}

stop() {
	local f
	for f in "$DATA"/*.pid; do
		[ -e "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) "$ARGENT" status --tree --server "$r1" ;;
*) die "usage: $0 start|status|stop" ;;
esac
