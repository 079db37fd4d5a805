#!/bin/sh
# run.sh - 'make bench': every number is measured side by side in one run
# and reported as a ratio, never checked against a wall-clock bound.
#   1. per-call cost of a forwarding hook: ns (best of alternating rounds)
#      and instructions (callgrind, repeatable on a noisy machine);
#   1b. event log: writer ns and instructions per event, reader events/s,
#      bytes per event by kind on a synthetic disk-I/O stream;
#   2. hook install time of the full target set, per QEMU version;
#   3. per QEMU version: exported functions, accepted, refused by reason.
set -eu
: "${BHRR_BUILDDIR:=$(pwd)}"
b=$BHRR_BUILDDIR
out=$b/bench-out
mkdir -p "$out"

echo "== 1. forwarding hook, per call"
"$b/tests/bench/bench_hook"
if command -v valgrind >/dev/null; then
	n=1000000
	for v in plain hooked; do
		valgrind --tool=callgrind --callgrind-out-file="$out/cg.$v" \
			"$b/tests/bench/bench_hook" --only $v $n >/dev/null 2>"$out/cg.$v.err"
	done
	ir() { sed -n 's/^summary: *//p' "$out/cg.$1" | head -n 1; }
	p=$(ir plain); h=$(ir hooked)
	awk -v p="$p" -v h="$h" -v n="$n" 'BEGIN {
		printf "  callgrind, %d calls each: unhooked %.2f instr/call, hooked %.2f instr/call, hook adds %.2f instr/call (ratio %.2fx)\n",
			n, p / n, h / n, (h - p) / n, h / p }'
fi

echo "== 1b. event log: writer, reader, bytes per event"
"$b/tests/bench/bench_log" "$out"
if command -v valgrind >/dev/null; then
	n=200000
	for k in 1 2; do
		valgrind --tool=callgrind --callgrind-out-file="$out/cg.log$k" \
			"$b/tests/bench/bench_log" --only $((n * k)) "$out" >/dev/null 2>"$out/cg.log$k.err"
	done
	a=$(sed -n 's/^summary: *//p' "$out/cg.log1" | head -n 1)
	c=$(sed -n 's/^summary: *//p' "$out/cg.log2" | head -n 1)
	awk -v a="$a" -v c="$c" -v n="$n" 'BEGIN {
		printf "  callgrind: %.1f instructions per appended io_complete (difference of %d and %d appends)\n",
			(c - a) / n, 2 * n, n }'
fi

guest() {
	cp "$b/tests/guest/mini-disk.img" "$out/disk.img"
	# shellcheck disable=SC2086
	set -- "$@" -nodefaults -display none -accel tcg -kernel "$b/tests/guest/mini.elf" \
		-drive "file=$out/disk.img,format=raw,if=ide,index=0" \
		-device isa-debug-exit,iobase=0xf4,iosize=1 -debugcon "file:$out/debugcon"
	"$@"
}

for v in 7.2 10.0; do
	if [ "$v" = 7.2 ]; then
		qemu=/usr/bin/qemu-system-x86_64; fw=
	else
		. "$b/qemu/10.0/env"; qemu=$QEMU_BIN; fw=$QEMU_FIRMWARE
	fi
	echo "== 2. QEMU $v: install time of the 14 targets (5 runs)"
	for i in 1 2 3 4 5; do
		# shellcheck disable=SC2086
		guest "$b/tools/bhrr" check -- "$qemu" $fw 2>&1 | sed -n 's/^bhrr: check: 14 targets.*install /  install /p'
	done
	echo "== 3. QEMU $v: every export null-hooked"
	# shellcheck disable=SC2086
	guest "$b/tools/bhrr" check --all -- "$qemu" $fw 2>&1 | sed -n 's/^bhrr: check-all: /  /p' \
		| grep -v '^  refused' || true
	echo "== 4. QEMU $v: whole guest run, plain vs forwarding hooks on the 14 targets (best of 5)"
	best_plain=999; best_check=999
	for i in 1 2 3 4 5; do
		t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		guest "$qemu" $fw >/dev/null 2>&1 || true
		t1=$(date +%s.%N)
		# shellcheck disable=SC2086
		guest "$b/tools/bhrr" check -- "$qemu" $fw >/dev/null 2>&1 || true
		t2=$(date +%s.%N)
		best_plain=$(awk -v a="$best_plain" -v s="$t0" -v e="$t1" 'BEGIN{d = e - s; print (d < a) ? d : a}')
		best_check=$(awk -v a="$best_check" -v s="$t1" -v e="$t2" 'BEGIN{d = e - s; print (d < a) ? d : a}')
	done
	awk -v p="$best_plain" -v c="$best_check" 'BEGIN {
		printf "  plain %.3f s, with hooks %.3f s, ratio %.3fx\n", p, c, c / p }'
done
