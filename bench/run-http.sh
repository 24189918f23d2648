#!/usr/bin/env bash
# End-to-end numbers of the HTTP API: GETs at a replica and PUTs at the
# root, with a root and a replica on 127.0.0.1, 100,000 keys x 256 B,
# 50 connections, 10 s per run:
#
#   1. GETs at the replica and PUTs at the root with the replica attached,
#      every process free to run on both cores (the load generator competes
#      with the servers for them);
#   2. PUTs at the root alone, the set-up of a one-member etcd;
#   3. GETs at a replica pinned to core 1 (GOMAXPROCS=1) with the load
#      generator pinned to core 0 (GOMAXPROCS=1): one core each, the way
#      redis-server and redis-benchmark (one thread each) share this machine.
#
# Step 3 needs taskset (util-linux); it is skipped with a message without it.
#
#   bench/run-http.sh            # from the repository root
#   LOAD_ARGS="-json" bench/run-http.sh
# shellcheck disable=SC2086 # $COMMON is a list of flags
set -euo pipefail
cd "$(dirname "$0")/.."

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argent-http.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a port on 127.0.0.1 that nothing listens on.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 30000))
		if ! (: </dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port" >&2
	return 1
}

# wait_up waits up to 10 s for a node's /v1/status.
wait_up() {
	for _ in $(seq 200); do
		curl -fs "http://$1/v1/status" >/dev/null && return
		sleep 0.05
	done
	echo "node $1 did not come up; logs:" >&2
	cat "$TMP"/*.log >&2
	return 1
}

go build -o "$TMP/argent" ./cmd/argent
(cd bench && go build -o "$TMP/load" ./load)

# applied prints a node's applied index.
applied() {
	curl -fs "http://$1/v1/status" | grep -o '"applied_index":[0-9]*' | head -n 1 | cut -d: -f2
}

# wait_caught_up waits up to 60 s until replica $1 has applied root $2's index.
wait_caught_up() {
	local want got
	want=$(applied "$2")
	for _ in $(seq 1200); do
		got=$(applied "$1") || got=0
		[ "${got:-0}" -ge "$want" ] && return
		sleep 0.05
	done
	echo "replica $1 did not catch up with $2" >&2
	return 1
}

ROOT=127.0.0.1:$(free_port)
REPLICA=127.0.0.1:$(free_port)
"$TMP/argent" root --data "$TMP/root" --listen "$ROOT" --log-level warn >"$TMP/root.log" 2>&1 &
ROOT_PID=$!
PIDS+=("$ROOT_PID")
wait_up "$ROOT"
"$TMP/argent" replica --data "$TMP/replica" --listen "$REPLICA" --upstream "$ROOT" --log-level warn >"$TMP/replica.log" 2>&1 &
REPLICA_PID=$!
PIDS+=("$REPLICA_PID")
wait_up "$REPLICA"
echo "root $ROOT (pid $ROOT_PID), replica $REPLICA (pid $REPLICA_PID)"

# -pids: report the CPU of the servers beside the load generator's own.
COMMON="-conns 50 -duration 10s -keys 100000 -value 256 ${LOAD_ARGS:-}"
echo "== 1. GET at the replica, uniform, shared cores"
"$TMP/load" -target "$REPLICA" -root "$ROOT" -prefill -mode get -dist uniform -pids "$ROOT_PID,$REPLICA_PID" $COMMON
echo "== 1. PUT at the root, replica attached, shared cores"
"$TMP/load" -target "$ROOT" -mode put -pids "$ROOT_PID,$REPLICA_PID" $COMMON

kill "$REPLICA_PID"
wait "$REPLICA_PID" 2>/dev/null || true
echo "== 2. PUT at the root alone, shared cores"
"$TMP/load" -target "$ROOT" -mode put -pids "$ROOT_PID" $COMMON

if ! command -v taskset >/dev/null; then
	echo "== 3. skipped: taskset (util-linux) is not installed"
	exit 0
fi
PINNED=127.0.0.1:$(free_port)
GOMAXPROCS=1 taskset -c 1 "$TMP/argent" replica --data "$TMP/pinned" --listen "$PINNED" --upstream "$ROOT" --log-level warn >"$TMP/pinned.log" 2>&1 &
PINNED_PID=$!
PIDS+=("$PINNED_PID")
wait_up "$PINNED"
wait_caught_up "$PINNED" "$ROOT"
echo "== 3. GET at a replica on core 1, load generator on core 0"
GOMAXPROCS=1 taskset -c 0 "$TMP/load" -target "$PINNED" -mode get -dist uniform -pids "$PINNED_PID" $COMMON
