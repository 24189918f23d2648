#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after the other, each
# for FUZZTIME (default 30s) with FUZZPARALLEL workers (default 1). A
# crasher is written under the package's testdata/fuzz/<Target>/, where
# every later `go test` runs it as a regression test, and fails the run.
#
#   scripts/fuzz.sh                 every target
#   scripts/fuzz.sh ./internal/resp only the targets of these packages
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
FUZZPARALLEL=${FUZZPARALLEL:-1}

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	# Packages with a fuzz target: a _test.go file declaring func FuzzXxx.
	mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
fi

failed=0
for pkg in "${pkgs[@]}"; do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for t in $targets; do
		echo "== $pkg $t ($FUZZTIME)"
		start=$(date +%s)
		if ! go test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "$pkg"; then
			echo "FAIL $pkg $t: see $pkg/testdata/fuzz/$t"
			failed=1
		fi
		echo "== $pkg $t done in $(($(date +%s) - start))s"
	done
done
exit $failed
