#!/bin/bash
# demo.sh - the main job on a fresh Debian 12: install, build, then show on
# the stock QEMU 7.2 and 10.0 with the bundled guest:
#   1. free runs of the same guest and command line differ (I/O timing);
#   2. one run recorded with bhrr record, then replayed three times with
#      bhrr replay: every replay prints exactly what the recording printed;
#   3. the flaky guest: free runs fail sometimes; a failing recording
#      replays failing.
set -eu
cd "$(dirname "$0")/.."

scripts/setup-debian.sh
scripts/build.sh
make -j"$(nproc)" tests/guest/guest.elf tests/guest/disk.img qemu/10.0/.stamp >/dev/null

GUEST_DIR=$PWD/tests/guest
# shellcheck source=tests/guest/guest.sh
. tests/guest/guest.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for v in 7.2 10.0; do
	if [ "$v" = 7.2 ]; then
		qemu=(/usr/bin/qemu-system-x86_64)
	else
		. qemu/10.0/env
		# shellcheck disable=SC2206
		qemu=("$QEMU_BIN" $QEMU_FIRMWARE)
	fi
	echo "==== QEMU $v: 5 free runs of the virtio-blk guest, same command line"
	for i in 1 2 3 4 5; do
		guest_argv virtio "$tmp"
		st=0
		"${qemu[@]}" "${GUEST_ARGV[@]}" >"$tmp/out" 2>&1 || st=$?
		printf '  run %d: exit %d, %s, %s\n' "$i" "$st" \
			"$(sed -n 's/^done: .*\(inversions=[0-9]*\).*/\1/p' "$tmp/out")" \
			"$(grep '^digest=' "$tmp/out")"
	done
	echo "==== QEMU $v: record one run, replay it 3 times (digest of the whole output)"
	guest_argv virtio "$tmp"
	st=0
	rm -f "$tmp/run.bhlog"
	tools/bhrr record -o "$tmp/run.bhlog" -- "${qemu[@]}" "${GUEST_ARGV[@]}" >"$tmp/rec.out" 2>/dev/null || st=$?
	printf '  recorded: exit %d, %s\n' "$st" "$(grep '^digest=' "$tmp/rec.out")"
	for i in 1 2 3; do
		guest_argv virtio "$tmp"
		st=0
		tools/bhrr replay "$tmp/run.bhlog" -o "$tmp/rep.bhlog" -- "${qemu[@]}" "${GUEST_ARGV[@]}" \
			>"$tmp/rep.out" 2>/dev/null || st=$?
		printf '  replay %d: exit %d, %s, %s\n' "$i" "$st" "$(grep '^digest=' "$tmp/rep.out")" \
			"$(cmp -s "$tmp/rec.out" "$tmp/rep.out" && echo "output identical to the recording" || echo "OUTPUT DIFFERS")"
	done
	echo "==== QEMU $v: the flaky guest: record until a run fails, then replay it"
	for i in $(seq 1 30); do
		guest_argv flaky "$tmp"
		st=0
		rm -f "$tmp/flaky.bhlog"
		tools/bhrr record -o "$tmp/flaky.bhlog" -- "${qemu[@]}" "${GUEST_ARGV[@]}" >"$tmp/rec.out" 2>/dev/null || st=$?
		[ "$st" -eq "$GUEST_FLAKY" ] && break
	done
	printf '  run %d failed (exit %d)\n' "$i" "$st"
	for i in 1 2 3; do
		guest_argv flaky "$tmp"
		st=0
		tools/bhrr replay "$tmp/flaky.bhlog" -o "$tmp/rep.bhlog" -- "${qemu[@]}" "${GUEST_ARGV[@]}" \
			>"$tmp/rep.out" 2>/dev/null || st=$?
		printf '  replay %d: exit %d, %s\n' "$i" "$st" \
			"$(cmp -s "$tmp/rec.out" "$tmp/rep.out" && echo "output identical to the failing run" || echo "OUTPUT DIFFERS")"
	done
	echo
done
