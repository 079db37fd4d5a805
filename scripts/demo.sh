#!/bin/bash
# demo.sh - the main job on a fresh Debian 12: install, build, then show on
# the stock QEMU 7.2 and 10.0 with the bundled guest:
#   1. free runs of the same guest and command line differ (I/O timing);
#   2. bhrr check hooks every function bhrr patches, and the guest runs on.
# Record and replay are not there yet: the script says so instead of
# pretending.
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
	echo "==== QEMU $v: the flaky guest, 10 free runs (exit 37 = the race failed it)"
	for i in $(seq 1 10); do
		guest_argv flaky "$tmp"
		st=0
		"${qemu[@]}" "${GUEST_ARGV[@]}" >/dev/null 2>&1 || st=$?
		printf ' %d' "$st"
	done
	echo
	echo "==== QEMU $v: bhrr check (every target hooked, the guest runs on)"
	guest_argv virtio "$tmp"
	st=0
	tools/bhrr check -- "${qemu[@]}" "${GUEST_ARGV[@]}" 2>&1 | grep -E '^bhrr: check: (QEMU|[0-9]+ targets|calls)' || st=$?
	echo
done

echo "bhrr: record and replay: not yet. The hook engine, check mode, the event log and"
echo "      the guests are in place; recording and replaying these runs is the next step."
