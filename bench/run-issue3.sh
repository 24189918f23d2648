#!/usr/bin/env bash
# First end-to-end numbers (issue 3): a root and a replica on 127.0.0.1,
# 100,000 keys x 256 B, then 10 s of uniform GETs at the replica and 10 s of
# PUTs at the root, 50 connections each.
#
#   bench/run-issue3.sh            # from the repository root
#   LOAD_ARGS="-json" bench/run-issue3.sh
# shellcheck disable=SC2086 # $COMMON is a list of flags
set -euo pipefail
cd "$(dirname "$0")/.."

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argent-issue3.XXXXXX")
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
go build -o "$TMP/load" ./bench/load

ROOT=127.0.0.1:$(free_port)
REPLICA=127.0.0.1:$(free_port)
"$TMP/argent" root --data "$TMP/root" --listen "$ROOT" --log-level warn >"$TMP/root.log" 2>&1 &
PIDS+=($!)
wait_up "$ROOT"
"$TMP/argent" replica --data "$TMP/replica" --listen "$REPLICA" --upstream "$ROOT" --log-level warn >"$TMP/replica.log" 2>&1 &
PIDS+=($!)
wait_up "$REPLICA"
echo "root $ROOT (pid ${PIDS[0]}), replica $REPLICA (pid ${PIDS[1]})"

# -pids: report the CPU of root + replica beside the load generator's own.
COMMON="-conns 50 -duration 10s -keys 100000 -value 256 -pids ${PIDS[0]},${PIDS[1]} ${LOAD_ARGS:-}"
echo "== GET at the replica, uniform"
"$TMP/load" -target "$REPLICA" -root "$ROOT" -prefill -mode get -dist uniform $COMMON
echo "== PUT at the root"
"$TMP/load" -target "$ROOT" -mode put $COMMON
