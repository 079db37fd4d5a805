#!/bin/bash
# run.sh - 'make bench': every number is measured side by side in one run
# and reported as a ratio, never checked against a wall-clock bound.
#   1. per-call cost of a forwarding hook: ns (best of alternating rounds)
#      and instructions (callgrind, repeatable on a noisy machine);
#   1b. event log: writer ns and instructions per event, reader events/s,
#      bytes per event by kind on a synthetic disk-I/O stream;
#   2. hook install time of the full target set, per QEMU version;
#   3. per QEMU version: exported functions, accepted, refused by reason;
#   4. whole guest runs with check-mode hooks; 5. record vs plain, log size;
#   5c. shim instructions per completion, per guest; 5s. start-up: the
#   constructor's instructions and a QEMU that stops at once, record vs plain; 5d. the CI-shaped Linux run (issue 14):
#   record and replay vs plain, its inputs' bytes; 5f. -smp (issue 13): the race
#   guest and the Linux tier, record and replay vs plain; 6. replay vs plain and vs record;
#   6b. bhrr beside QEMU's native record/replay on the same guests;
#   7. the compatibility matrix's QEMUs (make check-compat's chroots, where
#      they exist) and the aarch64 and riscv64 emulators: self-check, record
#      and replay vs plain, replays identical;
#   8. reverse debugging: reverse-stepi and reverse-continue at icount 10 M and
#      100 M, bhrr beside QEMU's native reverse debugging.
set -eu
: "${BHRR_BUILDDIR:=$(pwd)}"
b=$BHRR_BUILDDIR
out=$b/bench-out
# BHRR_BENCH_BASELINE=DIR: also measure the shim built in DIR (DIR/.libs/libbhrr.so),
# alternating with this one in the same loops: "before" and "after" from one run
base=${BHRR_BENCH_BASELINE:-}
if [ -n "$base" ] && [ ! -f "$base/.libs/libbhrr.so" ]; then
	echo "BHRR_BENCH_BASELINE=$base: no $base/.libs/libbhrr.so" >&2
	exit 2
fi
# BHRR_BENCH_NATIVE_CAP=S: cut each run of QEMU's native record/replay (5e, 5f) at S seconds (240)
# BHRR_BENCH_QEMUS="10.0": only those QEMUs (7.2 10.0) in the sections run on both
qemus=${BHRR_BENCH_QEMUS:-7.2 10.0}
# BHRR_BENCH_ONLY="5 6": only those sections (1 1b 2 5 6 6b 5b 5c 5s 5d 5e 5f 7 8; 2 stands for 2-4)
want() { [ -z "${BHRR_BENCH_ONLY:-}" ] || [[ " $BHRR_BENCH_ONLY " == *" $1 "* ]]; }
mkdir -p "$out"

# select_qemu VERSION: set qemu and fw (the -L options) for QEMU 7.2 or 10.0.
select_qemu() {
	if [ "$1" = 7.2 ]; then
		unset QEMU_MODULE_DIR # 10.0's env sets it for its unpacked tree
		qemu=/usr/bin/qemu-system-x86_64; fw=
	else
		. "$b/qemu/10.0/env"; qemu=$QEMU_BIN; fw=$QEMU_FIRMWARE
	fi
}

if want 1; then
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
fi

if want 1b; then
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
fi

guest() {
	cp "$b/tests/guest/mini-disk.img" "$out/disk.img"
	# shellcheck disable=SC2086
	set -- "$@" -nodefaults -display none -accel tcg -kernel "$b/tests/guest/mini.elf" \
		-drive "file=$out/disk.img,format=raw,if=ide,index=0" \
		-device isa-debug-exit,iobase=0xf4,iosize=1 -debugcon "file:$out/debugcon"
	"$@"
}

for v in $qemus; do
	want 2 || continue
	select_qemu "$v"
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

# ---- 5. record: wall time against plain runs, log size, shim instructions
GUEST_DIR=$b/tests/guest
# shellcheck source=tests/guest/guest.sh
. "$(dirname "$0")/../guest/guest.sh"
now_s() { date +%s.%N; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b < a) ? b : a }'; }
# median X...: the median of the numbers (mawk has no sort of its own)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# section 5's rounds: BHRR_BENCH_REPS (default 9); fewer than that let one noisy moment set a ratio
reps5=${BHRR_BENCH_REPS:-9}
# BHRR_BENCH_CONFIGS="ide-pio": only those guest configurations in sections 5, 5c and 6
GUEST_CONFIGS=${BHRR_BENCH_CONFIGS:-$GUEST_CONFIGS}
# quartiles X...: "Q1-Q3" of the numbers, the spread of a median's rounds
quartiles() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f-%.3f", v[int((NR + 3) / 4)], v[int((3 * NR + 3) / 4)] }'; }
# best CUR T0 T1: the smaller of CUR and the time from T0 to T1
best() { min "$1" "$(awk -v a="$2" -v b="$3" 'BEGIN { print b - a }')"; }
# plain_run CONFIG N: args = CONFIG's command line at 8x its N commands, one
# plain run of it on $qemu timed by t0 and t1, then fresh disks for the next run
plain_run() {
	guest_argv "$1" "$out"
	args=("${GUEST_ARGV[@]/ n=$2/ n=$((8 * $2))}")
	t0=$(now_s)
	# shellcheck disable=SC2086
	"$qemu" $fw "${args[@]}" >/dev/null 2>&1 || true
	t1=$(now_s)
	guest_argv "$1" "$out"
}
# shim_record LOG CMD...: CMD (a QEMU) with the shim preloaded, recording to LOG
shim_record() {
	local log=$1
	shift
	BHRR_MODE=record BHRR_LOG="$log" BHRR_LOG_OVERWRITE=1 LD_PRELOAD="${SHIM:-$b}/.libs/libbhrr.so" "$@"
}
# shim_replay FROM LOG CMD...: the same, replaying FROM
shim_replay() {
	local from=$1 log=$2
	shift 2
	BHRR_MODE=replay BHRR_REPLAY="$from" BHRR_LOG="$log" BHRR_LOG_OVERWRITE=1 LD_PRELOAD="${SHIM:-$b}/.libs/libbhrr.so" "$@"
}
for v in $qemus; do
	want 5 || continue
	select_qemu "$v"
	echo "== 5. QEMU $v: record (the shim preloaded) vs plain, each guest with 8x its commands; best of $reps5 alternating runs"
	echo "   (median: the median over the rounds of record / plain within a round, which shares its moment's host noise)"
	echo "   (old landing: the same record with BHRR_TEST_NO_IO_LAND=1, every held item landed by a kick, none at a device access)"
	[ -z "$base" ] || echo "   (baseline: the same record with the shim of $base)"
	for config in $GUEST_CONFIGS; do
		bp=999; br=999; bo=999; bb=999; ratios=; bratios=
		n=$(guest_append "$config" | sed -n 's/.* n=\([0-9]*\).*/\1/p')
		for _ in $(seq "$reps5"); do
			plain_run "$config" "$n"
			# shellcheck disable=SC2086
			shim_record "$out/rec.bhlog" "$qemu" $fw "${args[@]}" >/dev/null 2>&1 || true
			t2=$(now_s)
			guest_argv "$config" "$out"
			# shellcheck disable=SC2086
			BHRR_TEST_NO_IO_LAND=1 shim_record "$out/rec0.bhlog" "$qemu" $fw "${args[@]}" >/dev/null 2>&1 || true
			t3=$(now_s)
			if [ -n "$base" ]; then
				guest_argv "$config" "$out"
				# shellcheck disable=SC2086
				SHIM=$base shim_record "$out/recb.bhlog" "$qemu" $fw "${args[@]}" >/dev/null 2>&1 || true
			fi
			t4=$(now_s)
			bp=$(best "$bp" "$t0" "$t1")
			br=$(best "$br" "$t1" "$t2")
			bo=$(best "$bo" "$t2" "$t3")
			bb=$(best "$bb" "$t3" "$t4")
			ratios="$ratios $(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { print (c - b) / (b - a) }')"
			bratios="$bratios $(awk -v a="$t0" -v b="$t1" -v c="$t3" -v d="$t4" 'BEGIN { print (d - c) / (b - a) }')"
		done
		med=$(median $ratios); bmed=$(median $bratios); q=$(quartiles $ratios); bq=$(quartiles $bratios)
		size=$(stat -c %s "$out/rec.bhlog")
		ios=$("$b/tools/bhrr" stat --json "$out/rec.bhlog" | sed -n 's/.*"io_complete":{"count":\([0-9]*\).*/\1/p')
		cmds=$((8 * n))
		awk -v c="$config" -v p="$bp" -v r="$br" -v o="$bo" -v bb="$bb" -v base="$base" -v s="$size" -v io="${ios:-0}" -v n="$cmds" -v m="$med" -v bm="$bmed" -v q="$q" -v bq="$bq" 'BEGIN {
			printf "  %-13s plain %.3f s, record %.3f s, ratio %.3fx, median %.3fx (quartiles %s; old landing %.3fx%s); log %d bytes: %.1f per guest command, %.1f per I/O request\n",
				c, p, r, r / p, m, q, o / p, base == "" ? "" : sprintf(", baseline %.3fx, median %.3fx, quartiles %s", bb / p, bm, bq), s, s / n, (io ? s / io : 0) }'
	done
done
for v in $qemus; do
	want 6 || continue
	select_qemu "$v"
	echo "== 6. QEMU $v: replay vs plain and vs record (best of 3 alternating runs, shim preloaded)"
	for config in $GUEST_CONFIGS; do
		bp=999; br=999; bq=999; bb=999; parks=
		for _ in 1 2 3; do
			guest_argv "$config" "$out"
			t0=$(now_s)
			# shellcheck disable=SC2086
			"$qemu" $fw "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
			t1=$(now_s)
			guest_argv "$config" "$out"
			# shellcheck disable=SC2086
			shim_record "$out/rr.bhlog" "$qemu" $fw "${GUEST_ARGV[@]}" >"$out/rr.rec" 2>/dev/null || true
			t2=$(now_s)
			guest_argv "$config" "$out"
			# shellcheck disable=SC2086
			shim_replay "$out/rr.bhlog" "$out/rr2.bhlog" "$qemu" $fw "${GUEST_ARGV[@]}" \
				>"$out/rr.rep" 2>"$out/rr.err" || true
			t3=$(now_s)
			if [ -n "$base" ]; then
				guest_argv "$config" "$out"
				# shellcheck disable=SC2086
				SHIM=$base shim_record "$out/rrb.bhlog" "$qemu" $fw "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
				guest_argv "$config" "$out"
				tb0=$(now_s)
				# shellcheck disable=SC2086
				SHIM=$base shim_replay "$out/rrb.bhlog" "$out/rrb2.bhlog" "$qemu" $fw "${GUEST_ARGV[@]}" \
					>/dev/null 2>&1 || true
				bb=$(best "$bb" "$tb0" "$(now_s)")
			fi
			bp=$(best "$bp" "$t0" "$t1")
			br=$(best "$br" "$t1" "$t2")
			bq=$(best "$bq" "$t2" "$t3")
			cmp -s "$out/rr.rec" "$out/rr.rep" || parks="$parks (output differed!)"
			parks="$parks $(sed -n 's/.*; \([0-9]*\) parks).*/\1/p' "$out/rr.err")"
		done
		awk -v c="$config" -v p="$bp" -v r="$br" -v q="$bq" -v k="$parks" -v bb="$bb" -v base="$base" 'BEGIN {
			printf "  %-13s plain %.3f s, record %.3f s, replay %.3f s: replay/plain %.2fx%s, replay/record %.2fx; parks per run:%s\n",
				c, p, r, q, q / p, base == "" ? "" : sprintf(" (baseline %.2fx)", bb / p), q / r, k }'
	done
done
# native_args MODE FILE: args rewritten for QEMU's native record/replay
# (-icount rr=MODE,rrfile=FILE), every disk behind a blkreplay driver: an
# if=ide drive becomes if=none with an ide-hd on its bus, a -device's
# drive=ID gets the blkreplay node over ID; the rest (-snapshot, -smp, 9p)
# stays as it is
native_args() {
	local a prev= k=0 n=() extra=() id
	for a in "${args[@]}"; do
		case "$prev:$a" in
		-icount:*sleep=off*) a="${a/sleep=off/rr=$1,rrfile=$2}" ;;
		-drive:*if=ide,index=*)
			k=$((k + 1)); id=nd$k
			local idx=${a##*index=}
			idx=${idx%%,*}
			a="id=$id,${a/if=ide,index=$idx/if=none}"
			extra+=(-drive "driver=blkreplay,if=none,image=$id,id=r$id"
				-device "ide-hd,drive=r$id,bus=ide.$((idx / 2)),unit=$((idx % 2))") ;;
		-device:*drive=*)
			id=${a#*drive=}; id=${id%%,*}
			extra+=(-drive "driver=blkreplay,if=none,image=$id,id=r$id")
			a="${a/drive=$id/drive=r$id}" ;;
		esac
		n+=("$a")
		prev=$a
	done
	args=("${n[@]}" "${extra[@]}")
}
for v in $qemus; do
	want 6b || continue
	select_qemu "$v"
	echo "== 6b. QEMU $v: bhrr beside QEMU's native record/replay (-icount rr=, blkreplay), best of 3"
	for config in ahci-ncq virtio flaky; do
		bp=999; br=999; bq=999; nr=999; nq=999; same=yes
		for _ in 1 2 3; do
			guest_argv "$config" "$out"
			t0=$(now_s)
			# shellcheck disable=SC2086
			"$qemu" $fw "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
			t1=$(now_s)
			guest_argv "$config" "$out"
			# shellcheck disable=SC2086
			shim_record "$out/rr.bhlog" "$qemu" $fw "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
			t2=$(now_s)
			guest_argv "$config" "$out"
			# shellcheck disable=SC2086
			shim_replay "$out/rr.bhlog" "$out/rr2.bhlog" "$qemu" $fw "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
			t3=$(now_s)
			guest_argv "$config" "$out"; args=("${GUEST_ARGV[@]}"); native_args record "$out/native.rr"
			# shellcheck disable=SC2086
			"$qemu" $fw "${args[@]}" >"$out/native.rec" 2>/dev/null || true
			t4=$(now_s)
			guest_argv "$config" "$out"; args=("${GUEST_ARGV[@]}"); native_args replay "$out/native.rr"
			# shellcheck disable=SC2086
			"$qemu" $fw "${args[@]}" >"$out/native.rep" 2>/dev/null || true
			t5=$(now_s)
			cmp -s "$out/native.rec" "$out/native.rep" || same=no
			bp=$(best "$bp" "$t0" "$t1")
			br=$(best "$br" "$t1" "$t2")
			bq=$(best "$bq" "$t2" "$t3")
			nr=$(best "$nr" "$t3" "$t4")
			nq=$(best "$nq" "$t4" "$t5")
		done
		nsize=$(stat -c %s "$out/native.rr" 2>/dev/null || echo 0)
		bsize=$(stat -c %s "$out/rr.bhlog")
		awk -v c="$config" -v p="$bp" -v r="$br" -v q="$bq" -v nr="$nr" -v nq="$nq" -v s="$same" \
			-v ns="$nsize" -v bs="$bsize" 'BEGIN {
			printf "  %-9s plain %.3f s | bhrr record %.2fx, replay %.2fx, log %d B | native record %.2fx, replay %.2fx, log %d B (replay output identical: %s)\n",
				c, p, r / p, q / p, bs, nr / p, nq / p, ns, s }'
	done
done
# linux_argv KERNEL-ARGS: LINUX_ARGV, the Linux tier's command line on QEMU
# $qemu with fresh disks in $out (tests/shell/50-linux.bats has the same)
linux_argv() {
	cp "$b/tests/guest/disk.img" "$out/sda.img"; cp "$b/tests/guest/disk.img" "$out/vda.img"
	# shellcheck disable=SC2206
	LINUX_ARGV=("$qemu" $fw -nodefaults -display none -accel tcg -icount shift=0,sleep=off
		-rtc clock=vm,base=2020-01-01T00:00:00 -seed 1 -m 256 -no-reboot
		-kernel "$b/guest-linux/vmlinuz" -initrd "$b/guest-linux/initrd.gz"
		-append "console=ttyS0 quiet panic=-1 $1" -serial stdio
		-drive "file=$out/sda.img,format=raw,if=ide,index=0"
		-drive "id=v,file=$out/vda.img,format=raw,if=none" -device virtio-blk-pci,drive=v)
}

if want 5b && [ -f "$b/guest-linux/.stamp" ]; then
	for v in $qemus; do
		select_qemu "$v"
		echo "== 5b. Linux tier (QEMU $v): plain, record, replay, one run each"
		# linux plain | linux CMD BHRR-ARGS...: one run with fresh disks
		linux() {
			local mode=$1 rest
			shift; rest=("$@")
			linux_argv "bhrr.ops=30"
			set -- "${LINUX_ARGV[@]}"
			case $mode in
			plain) "$@" ;;
			*) "$b/tools/bhrr" "$mode" "${rest[@]}" "$@" ;;
			esac
		}
		t0=$(now_s); linux plain >/dev/null 2>&1 || true; t1=$(now_s)
		rm -f "$out/linux.bhlog"; linux record -o "$out/linux.bhlog" -- >"$out/linux.rec" 2>/dev/null || true; t2=$(now_s)
		linux replay "$out/linux.bhlog" -o "$out/linux2.bhlog" -- >"$out/linux.rep" 2>"$out/linux.err" || true; t3=$(now_s)
		same=yes; cmp -s "$out/linux.rec" "$out/linux.rep" || same=no
		parks=$(sed -n 's/.*; \([0-9]*\) parks).*/\1/p' "$out/linux.err")
		awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v s="$same" -v k="$parks" 'BEGIN {
			printf "  plain %.1f s, record %.1f s (%.3fx), replay %.1f s (%.3fx plain, %.3fx record), %s parks, replay output identical: %s\n",
				b - a, c - b, (c - b) / (b - a), d - c, (d - c) / (b - a), (d - c) / (c - b), k, s }'
	done
fi
# rr3 LABEL QEMU SETUP...: three rounds of a plain run, a record and a replay
# (the bhrr command, with the options in rr_rec and rr_rep) of the command
# line SETUP sets in args (with fresh disks) before each; prints LABEL with
# the medians and how many replays were identical to a record that got to
# its end (a line matching rr_done)
# rr_native: empty (bhrr only), yes (QEMU's native record/replay too, in the
# first round only: the Linux tier takes minutes under it), all (every round)
rr_defaults() { rr_rec=(--force) rr_rep=(--force) rr_done='^done:'; rr_native=; }
native_cap=${BHRR_BENCH_NATIVE_CAP:-240}
rr_defaults
rr3() {
	local label=$1 q=$2 tp=() tr=() tq=() tnr=() tnq=() same=0 nsame=0 p r q2 nr nq nerr=
	shift 2
	for it in 1 2 3; do
		if [ -n "$rr_native" ] && { [ "$it" -eq 1 ] || [ "$rr_native" = all ]; }; then
			# QEMU's own record/replay of the same command line, where it runs
			# at all; each run cut at native_cap seconds (it can be 100x plain)
			"$@"; native_args record "$out/native.rr"
			t0=$(now_s); timeout "$native_cap" "$q" "${args[@]}" </dev/null >"$out/n.rec" 2>"$out/n.err" || true; t1=$(now_s)
			"$@"; native_args replay "$out/native.rr"
			timeout "$native_cap" "$q" "${args[@]}" </dev/null >"$out/n.rep" 2>>"$out/n.err" || true; t2=$(now_s)
			grep -q "$rr_done" "$out/n.rec" && cmp -s "$out/n.rec" "$out/n.rep" && nsame=$((nsame + 1))
			grep -q "$rr_done" "$out/n.rec" || nerr=$(grep -m1 -i 'error\|not supported\|qemu-system' "$out/n.err" | cut -c1-110)
			grep -q "$rr_done" "$out/n.rec" || [ -n "$nerr" ] || nerr="its record did not finish in ${native_cap} s"
			grep -q "$rr_done" "$out/n.rep" || [ -n "$nerr" ] || nerr="its replay did not finish in ${native_cap} s"
			tnr+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
			tnq+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')")
		fi
		"$@"
		t0=$(now_s); "$q" "${args[@]}" </dev/null >/dev/null 2>&1 || true; t1=$(now_s)
		"$@"; rm -f "$out/c.bhlog"
		"$b/tools/bhrr" record "${rr_rec[@]}" -o "$out/c.bhlog" -- "$q" "${args[@]}" </dev/null >"$out/c.rec" 2>/dev/null || true
		t2=$(now_s)
		"$@"
		"$b/tools/bhrr" replay "${rr_rep[@]}" "$out/c.bhlog" -o "$out/c2.bhlog" -- "$q" "${args[@]}" </dev/null >"$out/c.rep" 2>/dev/null || true
		t3=$(now_s)
		# identical, and a run that got to its end: two runs that never booted are "identical" too
		grep -q "$rr_done" "$out/c.rec" && cmp -s "$out/c.rec" "$out/c.rep" && same=$((same + 1))
		tp+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
		tr+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')")
		tq+=("$(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')")
	done
	p=$(median "${tp[@]}"); r=$(median "${tr[@]}"); q2=$(median "${tq[@]}")
	awk -v c="$label" -v p="$p" -v r="$r" -v q="$q2" -v s="$same" 'BEGIN {
		printf "    %-22s plain %.3f s, record %.3fx, replay %.3fx, replays identical %d/3\n", c, p, r / p, q / p, s }'
	[ -n "$rr_native" ] || return 0
	if [ -n "$nerr" ]; then
		echo "    $(printf '%-22s' '')native record/replay: does not run: $nerr"
	else
		nr=$(median "${tnr[@]}"); nq=$(median "${tnq[@]}")
		awk -v p="$p" -v r="$nr" -v q="$nq" -v s="$nsame" -v n="${#tnr[@]}" 'BEGIN {
			printf "    %-22s native record %.3fx, replay %.3fx, replays identical %d/%d\n", "", r / p, q / p, s, n }'
	fi
}
if want 5e && [ -f "$b/guest-linux/.stamp" ]; then
	# the disks CI uses (issue 13), as tests/shell/50-linux.bats runs them:
	# qcow2 overlays under -snapshot (and the virtio disk in an iothread),
	# aio=native + aio=io_uring (gated at the block backend), a 9p share;
	# three rounds of plain, record and replay each
	disk_args() {
		linux_argv "bhrr.ops=30"
		args=("${LINUX_ARGV[@]:1}")
		case $1 in
		qcow2)
			qemu-img create -q -f qcow2 -F raw -b "$out/sda.img" "$out/sda.qcow2"
			qemu-img create -q -f qcow2 -F raw -b "$out/vda.img" "$out/vda.qcow2"
			args=("${args[@]/file=$out\/sda.img,format=raw/file=$out/sda.qcow2,format=qcow2}")
			args=("${args[@]/file=$out\/vda.img,format=raw/file=$out/vda.qcow2,format=qcow2}" -snapshot) ;;
		aio)
			args=("${args[@]/file=$out\/sda.img,format=raw/file=$out/sda.img,format=raw,aio=native,cache.direct=on}")
			args=("${args[@]/file=$out\/vda.img,format=raw/file=$out/vda.img,format=raw,aio=io_uring}") ;;
		iothread)
			# qcow2's, the virtio disk in an iothread: plain runs it there,
			# bhrr record and replay move it to the main loop
			disk_args qcow2
			args=("${args[@]/virtio-blk-pci,drive=v/virtio-blk-pci,drive=v,iothread=io0}" -object iothread,id=io0) ;;
		9p)
			# a reader of a read-only share beside the disk workers (50-linux.bats's)
			share_9p "$out"
			args=("${args[@]/bhrr.ops=30/bhrr.ops=30 bhrr.9p=host0}"
				-fsdev "local,id=fs0,path=$out/share,security_model=none,readonly=on"
				-device virtio-9p-pci,fsdev=fs0,mount_tag=host0) ;;
		esac
	}
	for v in $qemus; do
		select_qemu "$v"
		echo "== 5e. Linux tier (QEMU $v), the disks CI uses: record and replay vs plain, medians of 3"
		rr_rep=() rr_done='^linux-guest: done' rr_native=yes
		for c in qcow2 iothread aio 9p; do
			# an iothread is refused --as-is: plain bhrr record moves it
			if [ "$c" = iothread ]; then rr_rec=(); else rr_rec=(--as-is); fi
			rr3 "$c" "$qemu" disk_args "$c"
		done
		rr_defaults
	done
fi
if want 5f; then
	# -smp N (issue 13): the vCPUs' turns logged and made again, QEMU 10.0
	# only (7.2 is refused); the bare-metal race guest and the Linux tier;
	# and whether QEMU's native record/replay takes -smp at all
	select_qemu 10.0
	echo "== 5f. -smp (QEMU 10.0): record and replay vs plain, medians of 3"
	# race_args CONFIG SMP: the race guest (tests/guest/smp.c) with SMP CPUs
	race_args() {
		guest_argv "$1" "$out"
		args=($fw "${GUEST_ARGV[@]/smp=2/smp=$2}")
		for i in "${!args[@]}"; do [ "${args[$i]}" != -smp ] || args[i + 1]=$2; done
	}
	rr_native=all rr_done='^done:'
	for c in smp-race smp-race-virtio; do
		for n in 2 4; do
			rr3 "$c -smp $n" "$qemu" race_args "$c" "$n"
		done
	done
	"$b/tools/bhrr" stat "$out/c.bhlog" | grep -E 'events in|^  slice' | sed 's/^/    (the last: /; s/$/)/'
	if [ -f "$b/guest-linux/.stamp" ]; then
		smp_linux_args() { linux_argv "bhrr.ops=30"; args=("${LINUX_ARGV[@]:1}" -smp 2); }
		rr_rec=() rr_rep=() rr_done='^linux-guest: done' rr_native=yes
		rr3 "Linux tier -smp 2" "$qemu" smp_linux_args
		"$b/tools/bhrr" stat "$out/c.bhlog" | grep -E 'events in|^  slice' | sed 's/^/    (/; s/$/)/'
	fi
	rr_defaults
fi
if want 5d && [ -f "$b/guest-linux/.stamp" ]; then
	# the CI-shaped run of 50-linux.bats (issue 14): the harness drives a plain
	# run and a record alike; the replay runs with nothing attached
	port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	for v in $qemus; do
		select_qemu "$v"
		echo "== 5d. the CI-shaped Linux run (QEMU $v): plain and record driven by tests/helper/ci-harness.py, replay alone; medians of 3"
		# ci MODE OUT: one run with fresh disks and sockets; MODE plain, record or replay
		ci() {
			local mode=$1 o=$2 http fwd
			http=$(port); fwd=$(port)
			rm -f "$out/qmp.sock" "$out/agent.sock"
			linux_argv "bhrr.ops=2 bhrr.shell=1 bhrr.net=1"
			set -- "${LINUX_ARGV[@]}" \
				-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$fwd-:22" \
				-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \
				-qmp "unix:$out/qmp.sock,server=on,wait=off" \
				-device virtio-serial-pci -chardev "socket,id=agent,path=$out/agent.sock,server=on,wait=off" \
				-device virtserialport,chardev=agent,name=org.qemu.guest_agent.0
			local h=("$b/tests/helper/ci-harness.py" "$http" "$fwd" "$out/qmp.sock" "$out/agent.sock" "$o")
			case $mode in
			plain) python3 "${h[@]}" "$@" 2>/dev/null ;;
			record) rm -f "$out/ci.bhlog"; python3 "${h[@]}" "$b/tools/bhrr" record -o "$out/ci.bhlog" -- "$@" 2>/dev/null ;;
			replay) "$b/tools/bhrr" replay "$out/ci.bhlog" -o "$out/ci2.bhlog" </dev/null >"$o" 2>/dev/null ;;
			esac
		}
		t_plain=(); t_rec=(); t_rep=(); same=yes
		for r in 1 2 3; do
			t0=$(now_s); ci plain "$out/ci.plain" || true; t1=$(now_s)
			ci record "$out/ci.rec" || true; t2=$(now_s)
			ci replay "$out/ci.rep" || true; t3=$(now_s)
			cmp -s "$out/ci.rec" "$out/ci.rep" || same=no
			t_plain+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
			t_rec+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')")
			t_rep+=("$(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')")
		done
		p=$(median "${t_plain[@]}"); r=$(median "${t_rec[@]}"); q=$(median "${t_rep[@]}")
		awk -v p="$p" -v r="$r" -v q="$q" -v s="$same" 'BEGIN {
			printf "  plain %.1f s, record %.1f s (%.3fx), replay %.1f s (%.3fx plain), replay output identical 3/3: %s\n",
				p, r, r / p, q, q / p, s }'
		"$b/tools/bhrr" stat "$out/ci.bhlog" | grep -E '^  (net_recv|chr_read|chr_event|rng_read|monitor) ' | sed 's/^/  /'
	done
fi
if want 5c && command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
	echo "== 5c. shim instructions per completion and per device access (callgrind --fair-sched=yes, QEMU 7.2, each guest with n=16)"
	echo "   (access: the device-access hook, io_land.c and record_io, per access the shim counted; the rest: every other run-time path, per completion."
	echo "    Under valgrind a polling guest polls longer, so the total per completion is not the native one: the split is.)"
	for config in $GUEST_CONFIGS; do
	for shim in "$b" $base; do
		label=$config
		[ "$shim" = "$b" ] || label="$config (baseline)"
		guest_argv "$config" "$out"
		n=$(guest_append "$config" | sed -n 's/.* n=\([0-9]*\).*/\1/p')
		# --fair-sched: valgrind runs one thread at a time, and without it the vCPU polled
		# for minutes before a worker thread got its turn to complete a request
		BHRR_MODE=record BHRR_LOG="$out/cg.bhlog" BHRR_LOG_OVERWRITE=1 BHRR_VERBOSE=1 LD_PRELOAD="$shim/.libs/libbhrr.so" \
			valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$out/cg.qemu" --smc-check=all \
			/usr/bin/qemu-system-x86_64 "${GUEST_ARGV[@]/ n=$n/ n=16}" >"$out/cg.qemu.txt" 2>&1 || true
		gated=$(sed -n 's/.*record: \([0-9]*\) BHs gated.*/\1/p' "$out/cg.qemu.txt")
		events=$("$b/tools/bhrr" stat --json "$out/cg.bhlog" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
		ios=$("$b/tools/bhrr" stat --json "$out/cg.bhlog" | sed -n 's/.*"io_complete":{"count":\([0-9]*\).*/\1/p')
		acc=$(sed -n 's/.* \([0-9]*\) guest device accesses.*/\1/p' "$out/cg.qemu.txt")
		# self cost of the shim's run-time paths (start-up, discovery and the flusher excluded)
		callgrind_annotate --inclusive=no --threshold=100 "$out/cg.qemu" 2>/dev/null \
			| grep 'libbhrr.so\]' | sed 's/ (.*%)  / /' \
			| awk -v c="$label" -v g="${gated:-0}" -v e="${events:-0}" -v io="${ios:-0}" -v acc="${acc:-0}" '
				{ gsub(",", "", $1); f = $2 }
				f ~ /shim\/[a-z_0-9]+\.c:/ && f !~ /shim\/(session|discover|settings|ctor|check|symbols|vlog|fingerprint|hook_[a-z_0-9]+)\.c:/ &&
				f !~ /lazy_init|log_writer_open|put_tag|encode_header|flusher_main|log_writer_flush|frame_record|write_all|finish|seal|replay_load|keys_add/ {
					s += $1
					if (f ~ /shim\/io_land\.c:/ || f ~ /:record_io$/) a += $1
				}
				END { r = s - a
					printf "  %-24s %4d completions, %6d accesses, %4d BHs gated: access %3.0f instructions per access; the rest %5.0f per completion, %4.0f per gated BH, %3.0f per logged event (total %6.0f per completion)\n",
					c, io, acc, g, acc ? a / acc : 0, io ? r / io : 0, g ? r / g : 0, e ? r / e : 0, io ? s / io : 0 }'
	done
	done
fi

# ---- 5s. start-up: what preloading the shim costs before the guest's first instruction
# The constructor's instructions (callgrind, repeatable), then the wall time of a QEMU
# that stops at once: its kernel is missing, so it exits after parsing its command
# line and making its machine, having run the shim's constructor and destructor.
if want 5s; then
	reps_s=${BHRR_BENCH_REPS_START:-21}
	for v in $qemus; do
		select_qemu "$v"
		echo "== 5s. QEMU $v: start-up, the ide-pio command line with a missing kernel: record vs plain"
		guest_argv ide-pio "$out"
		sargs=("${GUEST_ARGV[@]/#$GUEST_DIR\/guest.elf/$out/no-such-kernel.elf}")
		if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
			for shim in "$b" $base; do
				# shellcheck disable=SC2086
				BHRR_MODE=record BHRR_LOG="$out/su.bhlog" BHRR_LOG_OVERWRITE=1 LD_PRELOAD="$shim/.libs/libbhrr.so" \
					valgrind --tool=callgrind --callgrind-out-file="$out/cg.su" --toggle-collect=shim_init \
					"$qemu" $fw "${sargs[@]}" >/dev/null 2>&1 || true
				ir=$(callgrind_annotate "$out/cg.su" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
				printf "  constructor (callgrind): %s instructions%s\n" "${ir:-?}" \
					"$([ "$shim" = "$b" ] || echo " (baseline)")"
			done
		fi
		tp=; tr=; tb=
		for _ in $(seq "$reps_s"); do
			t0=$(now_s)
			# shellcheck disable=SC2086
			"$qemu" $fw "${sargs[@]}" >/dev/null 2>&1 || true
			t1=$(now_s)
			# shellcheck disable=SC2086
			shim_record "$out/su.bhlog" "$qemu" $fw "${sargs[@]}" >/dev/null 2>&1 || true
			t2=$(now_s)
			if [ -n "$base" ]; then
				# shellcheck disable=SC2086
				SHIM=$base shim_record "$out/su.bhlog" "$qemu" $fw "${sargs[@]}" >/dev/null 2>&1 || true
			fi
			t3=$(now_s)
			tp="$tp $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
			tr="$tr $(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')"
			tb="$tb $(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')"
		done
		mp=$(median $tp); mr=$(median $tr); mb=$(median $tb)
		awk -v p="$mp" -v r="$mr" -v bb="$mb" -v base="$base" -v n="$reps_s" 'BEGIN {
			printf "  median of %d alternating runs: plain %.1f ms, record %.1f ms: %+.1f ms, ratio %.3fx%s\n",
				n, p * 1000, r * 1000, (r - p) * 1000, r / p,
				base == "" ? "" : sprintf("; baseline %.1f ms: %+.1f ms, ratio %.3fx", bb * 1000, (bb - p) * 1000, bb / p) }'
	done
fi

# ---- 7. the compatibility matrix (issue 16)
# x86_args CONFIG: args = the firmware options and CONFIG's command line at 8x its commands
x86_args() {
	local n
	n=$(guest_append "$1" | sed -n 's/.* n=\([0-9]*\).*/\1/p')
	guest_argv "$1" "$out"
	# shellcheck disable=SC2206
	args=($fw "${GUEST_ARGV[@]/ n=$n/ n=$((8 * n))}")
}
# virt_args GUEST: args = the virt-board guest's command line
virt_args() {
	virt_argv "$1" "$out"
	args=("${GUEST_ARGV[@]}")
}
if want 7; then
	echo "== 7. every QEMU here: self-check, record and replay vs plain (medians of 3; x86 at 8x commands), replays identical"
	echo "   (the chroots' QEMUs run through tests/compat/chroot.sh's wrapper, plain runs too; the bhrr command also"
	echo "    runs the self-check probe, about 0.1 s, to learn a wrapper's build-id, which their record and replay include)"
	qemus=("7.2" "10.0")
	# the wrappers make check-compat left in this build tree (tests/compat/chroot.sh)
	for w in "$b"/compat/*.qemu-system-x86_64; do [ -x "$w" ] && qemus+=("$w"); done
	for q in "${qemus[@]}"; do
		case $q in
		7.2|10.0) select_qemu "$q" ;;
		*) qemu=$q; fw=; unset QEMU_MODULE_DIR ;;
		esac
		# shellcheck disable=SC2086
		sc=$(BHRR_MODE=check BHRR_CHECK_SELF=1 LD_PRELOAD="$b/.libs/libbhrr.so" "$qemu" -version 2>&1 >/dev/null |
			sed -n 's/^bhrr: check: \(self-check \(passed\|failed\).*\)/\1/p' | cut -c1-90)
		ver=$("$qemu" -version | head -n 1 | sed 's/QEMU emulator version //')
		hooks=$(BHRR_MODE=check BHRR_CHECK_SELF=1 LD_PRELOAD="$b/.libs/libbhrr.so" "$qemu" -version 2>&1 >/dev/null |
			sed -n 's/.*hook-sites ok: \([0-9]* of [0-9]*\).*/\1/p')
		echo "  QEMU $ver: ${sc:-no self-check}; hook sites ${hooks:-?}"
		case $sc in "self-check passed"*) ;; *) continue ;; esac
		for config in ide-pio virtio; do
			rr3 "$config" "$qemu" x86_args "$config"
		done
	done
	# the virt-board guest (tests/guest/mmio/) on the other architectures' QEMUs
	for v in $qemus; do
		select_qemu "$v"
		for g in aarch64 aarch64-pci riscv64; do
			case $v in
			7.2) qa=/usr/bin/qemu-system-${g%-pci} ;;
			*) qa=$(. "$b/qemu/10.0/env"; [ "${g%-pci}" = aarch64 ] && echo "$QEMU_BIN_AARCH64" || echo "$QEMU_BIN_RISCV64") ;;
			esac
			[ -x "$qa" ] && [ -f "$b/tests/guest/mmio/$g.elf" ] || continue
			rr3 "QEMU $v $g" "$qa" virt_args "$g"
		done
	done
fi

# ---- 8. reverse debugging (bhrr replay --gdb, issue 15)
# gdb_timing KIND AT SOCK: gdb runs tests/helper/gdb-scenario.py's timing
# scenario (one reverse-stepi, one reverse-continue to the last cmd_complete,
# each timed by gdb itself) at icount AT; "reverse_stepi=S reverse_continue=S",
# or "no answer in 60 s" when gdb gave up.
gdb_timing() {
	local kind=$1 at=$2 sock=$3 r
	r=$( { [ "$kind" = native ] && export NATIVE=1; AT=$at SCENARIO=timing TARGET=$sock \
		timeout -k 5 60 gdb -batch -nx -x "$(dirname "$0")/../helper/gdb-scenario.py" \
		"$b/tests/guest/guest.elf" 2>&1; } | sed -n 's/^RESULT timing at=[0-9]* \(reverse_stepi=[0-9.]* reverse_continue=[0-9.]*\).*/\1/p')
	echo "${r:-no answer in 60 s}"
}
if want 8; then
	echo "== 8. reverse debugging: one reverse-stepi and one reverse-continue (to the last cmd_complete"
	echo "   hit) at icount 10 M and 100 M of the virtio guest at n=1000 (about 125 M instructions), timed by gdb;"
	echo "   bhrr replays the log again to get there, QEMU's native reverse debugging loads its snapshot"
	echo "   at icount 0 (rrsnapshot=init) and replays from it"
	for v in $qemus; do
		select_qemu "$v"
		guest_argv virtio "$out"
		args=("${GUEST_ARGV[@]/ n=64/ n=1000}")
		# shellcheck disable=SC2086
		"$b/tools/bhrr" record --force -o "$out/rev.bhlog" -- "$qemu" $fw "${args[@]}" >/dev/null 2>&1 || true
		for at in 10000000 100000000; do
			guest_argv virtio "$out" # the disks as the recording found them
			rm -f "$out/rev.sock" "$out/rev.err"
			"$b/tools/bhrr" replay "$out/rev.bhlog" --gdb="unix:$out/rev.sock" \
				>/dev/null 2>"$out/rev.err" &
			pid=$!
			for _ in $(seq 600); do grep -q "waiting for gdb" "$out/rev.err" && break; sleep 0.1; done
			r=$(gdb_timing bhrr "$at" "$out/rev.sock")
			kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
			echo "  QEMU $v at icount $at: bhrr   $r"
		done
		# QEMU's own record/replay of the same guest: blkreplay on a qcow2, snapshots in rr.qcow2
		qemu-img convert -O qcow2 "$b/tests/guest/disk.img" "$out/nat.qcow2"
		qemu-img create -q -f qcow2 "$out/natrr.qcow2" 64M
		nat=(-nodefaults -display none -accel tcg -rtc "clock=vm,base=2020-01-01T00:00:00" -seed 1
			-kernel "$b/tests/guest/guest.elf" -append "dev=virtio depth=8 n=1000"
			-device "isa-debug-exit,iobase=0xf4,iosize=1" -debugcon stdio
			-drive "file=$out/nat.qcow2,if=none,id=img-direct"
			-drive "driver=blkreplay,if=none,image=img-direct,id=img-blkreplay"
			-device "virtio-blk-pci,drive=img-blkreplay,disable-modern=on"
			-drive "file=$out/natrr.qcow2,if=none,id=rr" -net none)
		t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		"$qemu" $fw "${nat[@]}" -icount "shift=0,rr=record,rrfile=$out/nat.rr,rrsnapshot=init" \
			>/dev/null 2>&1 || true
		t1=$(date +%s.%N)
		for at in 10000000 100000000; do
			rm -f "$out/nat.sock"
			# shellcheck disable=SC2086
			"$qemu" $fw "${nat[@]}" -icount "shift=0,rr=replay,rrfile=$out/nat.rr,rrsnapshot=init" \
				-gdb "unix:$out/nat.sock,server=on,wait=off" -S >/dev/null 2>&1 &
			pid=$!
			for _ in $(seq 600); do [ -S "$out/nat.sock" ] && break; sleep 0.1; done
			r=$(gdb_timing native "$at" "$out/nat.sock")
			kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
			echo "  QEMU $v at icount $at: native $r"
		done
		awk -v a="$t0" -v c="$t1" 'BEGIN { printf "  (QEMU'"'"'s native record of that run took %.1f s)\n", c - a }'
	done
fi
