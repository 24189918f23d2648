#!/usr/bin/env bash
# Propagation delay through a chain root -> r1 -> r2 -> r3 (watches at
# depth 1 and 3) at 1,000 and 100 batches/s, and at 1,000/s with the data
# directories on tmpfs to take the disk out, and the snapshot bootstrap of
# a replica from a root holding 1,000,000 keys x 256 B. Every node is a
# real argent process on 127.0.0.1 with its own temporary data directory;
# each benchmark stops its nodes by PID when it ends.
#
#   bench/run-propagation.sh                       # from the repository root, about 2.5 minutes
#   DURATION=20s KEYS=100000 bench/run-propagation.sh
#   PPROF_DIR=/tmp/prof bench/run-propagation.sh   # also CPU profiles of the nodes in the 1,000/s run
# shellcheck disable=SC2086 # $PROP_ARGS and $SNAP_ARGS are lists of flags
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-60s}
KEYS=${KEYS:-1000000}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/argent-propagation.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

go build -o "$TMP/argent" ./cmd/argent
(cd bench && go build -o "$TMP/propagate" ./propagate && go build -o "$TMP/snapshot" ./snapshot)

echo "### $(date -u '+%Y-%m-%d %H:%M:%S') UTC, $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
DIRTY=""
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then DIRTY=" plus uncommitted files"; fi
echo "### $(go version), tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')$DIRTY"
echo

PROF=()
if [ -n "${PPROF_DIR:-}" ]; then
	PROF=(-pprof "$PPROF_DIR")
fi

echo "== propagation, 1000 batches/s for $DURATION"
"$TMP/propagate" -argent "$TMP/argent" -rate 1000 -duration "$DURATION" -writers 16 -watch 1,3 "${PROF[@]}" ${PROP_ARGS:-}
if [ -n "${PPROF_DIR:-}" ]; then
	for n in root r1 r2 r3; do
		echo "-- CPU profile of $n (top 25 by cumulative time)"
		go tool pprof -top -cum "$TMP/argent" "$PPROF_DIR/$n.pprof" 2>/dev/null | head -32 || true
	done
fi

echo "== propagation, 100 batches/s for 20s"
"$TMP/propagate" -argent "$TMP/argent" -rate 100 -duration 20s -writers 4 -window 5s -watch 1,3 ${PROP_ARGS:-}

echo "== propagation, 1000 batches/s for $DURATION, data directories on tmpfs (/dev/shm): the same without the disk"
"$TMP/propagate" -argent "$TMP/argent" -rate 1000 -duration "$DURATION" -writers 16 -watch 1,3 -tmpdir /dev/shm ${PROP_ARGS:-}

echo "== snapshot bootstrap, $KEYS keys x 256 B"
"$TMP/snapshot" -argent "$TMP/argent" -keys "$KEYS" -value 256 -batch 2000 ${SNAP_ARGS:-}
