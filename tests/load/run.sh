#!/bin/bash
# tests/load/run.sh [-n RUNS] [--nice] [--cpu-load PCT] [--keep DIR] [--seed S]
#
# The proof that the suite does not flake under host load: clones this
# repository's HEAD afresh, starts two CPU hogs (stress-ng --cpu 2, Debian's
# stress-ng), and runs the README's test command (scripts/test.sh) RUNS times
# in a row in that clone (default 5), then stops the hogs.  --nice runs the
# suite under 'nice -n 19' with the hogs at normal priority; --cpu-load PCT
# makes each hog busy PCT% of the time (default 100: always busy).  Prints
# each run's "N passed, N failed" line and its wall time, and exits non-zero
# if any run failed.  Each run's whole output is kept in DIR (default a new
# temporary directory) as run-K.log, and the fault matrix's TAP log (with the
# tampering outcome counts) as run-K.90-faults.log.  Run K seeds the seeded
# tamperings with S+K (BHRR_FAULT_SEED; S defaults to 0), so five runs
# tamper 1,000 different ways.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
runs=5 nice= load=100 keep= seed0=0
while [ $# -gt 0 ]; do
	case "$1" in
	-n) runs=$2; shift 2 ;;
	--nice) nice="nice -n 19"; shift ;;
	--cpu-load) load=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	--seed) seed0=$2; shift 2 ;;
	*) echo "usage: $0 [-n RUNS] [--nice] [--cpu-load PCT] [--keep DIR] [--seed S]" >&2; exit 2 ;;
	esac
done
command -v stress-ng >/dev/null || "$src/scripts/setup-debian.sh"
dir=${keep:-$(mktemp -d /tmp/bhrr-load.XXXXXX)}
mkdir -p "$dir"
rm -rf "$dir/clone"
git clone -q "$src" "$dir/clone"
echo "load: clone of $(git -C "$dir/clone" rev-parse --short HEAD) in $dir/clone"

stress-ng --cpu 2 --cpu-load "$load" --timeout 0 --quiet &
hogs=$!
trap 'kill "$hogs" 2>/dev/null; wait "$hogs" 2>/dev/null || true' EXIT
echo "load: stress-ng --cpu 2 --cpu-load $load (pid $hogs)${nice:+; the suite under $nice}"

failed=0
for k in $(seq 1 "$runs"); do
	t0=$(date +%s)
	status=0
	(cd "$dir/clone" && BHRR_FAULT_SEED=$((seed0 + k)) $nice scripts/test.sh) >"$dir/run-$k.log" 2>&1 ||
		status=$?
	t=$(($(date +%s) - t0))
	cp "$dir/clone/tests/shell/90-faults.log" "$dir/run-$k.90-faults.log" 2>/dev/null || true
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/run-$k.log" | tail -n 1 || true)
	printf 'load: run %d of %d: %s, exit %d, %d min %02d s\n' "$k" "$runs" "${line:-no summary}" \
		"$status" $((t / 60)) $((t % 60))
	if [ "$status" -ne 0 ]; then
		failed=$((failed + 1))
		grep -E '^(FAIL|ERROR):' "$dir/run-$k.log" | sed 's/^/load:   /' || true
	fi
done
echo "load: $((runs - failed)) of $runs runs passed; logs in $dir"
[ "$failed" -eq 0 ]
