#!/bin/bash
# measure.sh [RUNS] - free runs of every guest configuration on QEMU 7.2 and
# 10.0 under -icount shift=0,sleep=off: distinct outputs (by digest), exit
# verdicts (pass / flaky / fail) and wall time per run, as a Markdown table.
# Run from the build tree (BHRR_BUILDDIR, default: current directory).
set -eu
runs=${1:-20}
b=${BHRR_BUILDDIR:-$(pwd)}
GUEST_DIR=$b/tests/guest
# shellcheck source=tests/guest/guest.sh
. "$(dirname "$0")/guest.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "| QEMU | configuration | runs | distinct outputs | pass | flaky | fail | wall s/run |"
echo "|---|---|---|---|---|---|---|---|"
for v in 7.2 10.0; do
	if [ "$v" = 7.2 ]; then
		qemu=(/usr/bin/qemu-system-x86_64)
	else
		# shellcheck disable=SC1091
		. "$b/qemu/10.0/env"
		# shellcheck disable=SC2206
		qemu=("$QEMU_BIN" $QEMU_FIRMWARE)
	fi
	for config in $GUEST_CONFIGS; do
		pass=0 flaky=0 bad=0
		: >"$tmp/digests"
		t0=$(date +%s.%N)
		for _ in $(seq 1 "$runs"); do
			guest_argv "$config" "$tmp"
			st=0
			"${qemu[@]}" "${GUEST_ARGV[@]}" >"$tmp/out" 2>&1 || st=$?
			grep '^digest=' "$tmp/out" >>"$tmp/digests" || true
			case $st in
			"$GUEST_PASS") pass=$((pass + 1)) ;;
			"$GUEST_FLAKY") flaky=$((flaky + 1)) ;;
			*) bad=$((bad + 1)) ;;
			esac
		done
		t1=$(date +%s.%N)
		distinct=$(sort -u "$tmp/digests" | wc -l)
		wall=$(awk -v a="$t0" -v b="$t1" -v n="$runs" 'BEGIN { printf "%.2f", (b - a) / n }')
		echo "| $v | $config | $runs | $distinct | $pass | $flaky | $bad | $wall |"
	done
done
