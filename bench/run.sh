#!/usr/bin/env bash
# make bench: argent side by side with etcd and Redis on this machine.
#
#   bench/run.sh                       # the whole suite, about 15 minutes on 2 cores
#   bench/run.sh -quick                # a smoke run of about two minutes
#   bench/run.sh -workloads reads,writes -duration 10s
#   bench/run.sh -workloads group -docs ''  # three-member groups only, docs untouched
#   bench/run.sh -build-rev HEAD       # argent as last committed, not the working tree
#
# Installs Debian's redis-server, redis-tools and etcd-server when
# redis-server, redis-benchmark or etcd is missing, and stops the system
# services those packages may start, so that they neither take CPU nor
# hold ports during the runs (the benchmark never uses them: it starts
# every server itself on free 127.0.0.1 ports with its own temporary
# directories, and stops them by PID). Then it builds and runs
# go run ./compare in bench/ (the benchmarks' own module) with the
# arguments given here, which prints the ratio tables, rewrites the
# generated section of docs/benchmarks.md and writes
# bench/results/compare-*.json. Relative paths among the arguments are
# taken from bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

# stop_service stops and disables a system service that a package install
# may have started: through systemd when it runs, else through its init
# script, else by the PID in the service's own pid file.
stop_service() {
	local svc=$1 pidfile=$2
	if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
		systemctl stop "$svc" 2>/dev/null || true
		systemctl disable "$svc" 2>/dev/null || true
	elif command -v service >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
		service "$svc" stop >/dev/null 2>&1 || true
	fi
	if [ -r "$pidfile" ]; then
		local pid
		pid=$(cat "$pidfile")
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			echo "bench/run.sh: stopping $svc (pid $pid from $pidfile)"
			kill "$pid" 2>/dev/null || true
		fi
	fi
}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null || ! command -v etcd >/dev/null; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
	echo "bench/run.sh: installing redis-server redis-tools etcd-server from Debian"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools etcd-server
	stop_service redis-server /run/redis/redis-server.pid
	stop_service etcd /run/etcd.pid
fi

cd bench
go build -o /dev/null ./compare
start=$(date +%s)
go run ./compare "$@"
echo "bench/run.sh: done in $(( $(date +%s) - start )) s"
