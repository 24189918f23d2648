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

# crashers prints how many inputs a target has stored under testdata/fuzz.
crashers() {
	local files
	shopt -s nullglob
	files=("$1"/testdata/fuzz/"$2"/*)
	shopt -u nullglob
	echo "${#files[@]}"
}

failed=0
for pkg in "${pkgs[@]}"; do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for t in $targets; do
		echo "== $pkg $t ($FUZZTIME)"
		start=$(date +%s)
		before=$(crashers "$pkg" "$t")
		if ! out=$(go test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "$pkg" 2>&1); then
			echo "$out"
			# Go's fuzzer can end a short run with "context deadline
			# exceeded" when the time is up mid-run on a busy machine,
			# without finding anything: only a new crasher is a failure.
			if [ "$(crashers "$pkg" "$t")" -eq "$before" ] &&
				grep -q 'context deadline exceeded' <<<"$out"; then
				echo "== $pkg $t: the run ended at its deadline with no crasher"
			else
				echo "FAIL $pkg $t: see $pkg/testdata/fuzz/$t"
				failed=1
			fi
		else
			echo "$out"
		fi
		echo "== $pkg $t done in $(($(date +%s) - start))s"
	done
done
exit $failed
