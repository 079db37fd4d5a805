#!/usr/bin/env bats
# bhrr replay --gdb (doc/debug.md) on the real QEMU 7.2 and 10.0 with
# Debian's gdb: a failing run of the flaky guest, debugged forwards and
# backwards.  gdb runs tests/helper/gdb-scenario.py, which prints RESULT
# lines of guest state (registers, memory, icounts); nothing here depends on
# how long anything takes.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	cd "$BATS_TEST_TMPDIR"
}

# failing_log VERSION: fail.bhlog, a recording of the flaky guest failing.
# It fails with a rate inside [0.3, 0.7] (40-guest.bats): 30 tries all pass
# with probability at most 0.7^30 = 2e-5.
failing_log() {
	use_qemu "$1"
	local k st
	for k in $(seq 30); do
		guest_argv flaky "$BATS_TEST_TMPDIR"
		st=0
		# shellcheck disable=SC2086
		"$BHRR" record --force -o fail.bhlog -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
			>rec.out 2>rec.err || st=$?
		if [ "$st" -eq "$GUEST_FLAKY" ]; then
			echo "a failing recording after $k tries"
			return 0
		fi
	done
	echo "the flaky guest passed 30 times" >&2
	return 1
}

# debug SCENARIO [REPLAY OPTIONS...]: gdb runs SCENARIO against
# bhrr replay --gdb on fail.bhlog; its RESULT lines in $output.
debug() {
	local scenario=$1 k pid
	shift
	guest_argv flaky "$BATS_TEST_TMPDIR" # the disks as the recording found them
	rm -f g.sock gdb.out
	"$BHRR" replay fail.bhlog --gdb="unix:$BATS_TEST_TMPDIR/g.sock" "$@" >rep.out 2>rep.err &
	pid=$!
	# it says so once it listens (a wait for a message, not a verdict)
	for k in $(seq 600); do
		grep -q "waiting for gdb" rep.err && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# a hang bound only (a scenario takes seconds); gdb can sit out a SIGTERM, hence -k
	SCENARIO=$scenario TARGET="$BATS_TEST_TMPDIR/g.sock" timeout -k 10 600 \
		gdb -batch -nx -x "$BHRR_SRCDIR/tests/helper/gdb-scenario.py" "$GUEST_DIR/guest.elf" \
		>gdb.out 2>&1 || true
	wait "$pid" || true
	sed 's/^/replay: /' rep.err
	grep -iE 'error|traceback' gdb.out | grep -v '^RESULT' | head -5 || true
	run grep '^RESULT' gdb.out
	echo "$output"
	[ "$status" -eq 0 ]
}

# the value of KEY=N in the RESULT lines
val() {
	sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$output" | head -n 1
}

revcont() {
	failing_log "$1"
	debug revcont
	[ "$(val hits)" -eq 32 ]                    # a completion per command, then leave()
	[[ "$output" == *"revcont hits=32 at=cmd_complete "* ]]
	[ "$(val back_icount)" -eq "$(val hit_icount)" ]
	[ "$(val back_icount)" -lt "$(val leave_icount)" ]
	[ "$(val regs_same)" -eq 1 ]
	[ "$(val memory_same)" -eq 1 ]
}

@test "7.2: on a failing log, reverse-continue from the failure to the last completion: registers and the command table as the forward run saw them" {
	revcont 7.2
}

@test "10.0: on a failing log, reverse-continue from the failure to the last completion: registers and the command table as the forward run saw them" {
	revcont 10.0
}

stepi() {
	failing_log "$1"
	STEPS=200 debug stepi --stop-at=100000
	[ "$(val n)" -eq 200 ]
	[ "$(val from)" -eq 100000 ]
	[ "$(val to)" -eq 100200 ]
	[ "$(val distinct)" -gt 1 ]                  # the steps moved the guest
	[ "$(val differ)" -eq 0 ]                    # reverse-stepi: the same 201 states, reversed
	[[ "$output" == *"stats 200 re-executions"* ]]
}

@test "7.2: stepi 200 times, then reverse-stepi 200 times: the same states in reverse order" {
	stepi 7.2
}

@test "10.0: stepi 200 times, then reverse-stepi 200 times: the same states in reverse order" {
	stepi 10.0
}

watch() {
	failing_log "$1"
	debug watch
	[ "$(val writes)" -ge 1 ]                    # the forward run saw the latency written
	# backwards, gdb stops at the writing instruction, before it runs ...
	[ "$(val back_icount)" -eq $(($(val last_icount) - 1)) ]
	[[ "$output" == *" in=cmd_complete "* ]]
	# ... and one stepi on is the forward run's stop after the write
	[ "$(val stepped_icount)" -eq "$(val last_icount)" ]
	[ "$(val stepped_pc)" = "$(val last_pc)" ]
	grep -q "Old value = " gdb.out
}

@test "7.2: a watchpoint on what the failing check reads; reverse-continue from the failure stops at the last write of the forward run" {
	watch 7.2
}

@test "10.0: a watchpoint on what the failing check reads; reverse-continue from the failure stops at the last write of the forward run" {
	watch 10.0
}

stop_at() {
	failing_log "$1"
	debug when --stop-at=5000000
	[ "$(val icount)" -eq 5000000 ]
	# an event: the first completion at an exact icount; the stop is after it ran
	local ev ic
	read -r ev ic < <("$BHRR" dump fail.bhlog |
		awk '$2 == "io_complete" && $3 ~ /^icount=[0-9]+$/ && NF == 5 { sub("icount=", "", $3); print $1, $3; exit }')
	[ -n "$ev" ] && [ -n "$ic" ]
	debug when "--stop-at=#$ev"
	[ "$(val icount)" -eq "$ic" ]
	next=$(sed -n 's/.*next recorded event #\([0-9]*\) at icount.*/\1/p' <<<"$output")
	[ "$next" -gt "$ev" ]
	# not an event the replay delivers: said, and nothing runs
	run "$BHRR" replay fail.bhlog --gdb=unix:"$BATS_TEST_TMPDIR/x.sock" --stop-at=#1
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"event #1 of fail.bhlog is not one the replay delivers"* ]]
}

@test "7.2: --stop-at an icount and an event number: the guest is there, the event has run" {
	stop_at 7.2
}

@test "10.0: --stop-at an icount and an event number: the guest is there, the event has run" {
	stop_at 10.0
}

# gdb unwinds the 32-bit guest's frames through bhrr's i386 view of QEMU's
# x86-64 registers (doc/debug.md): reverse-finish and reverse-next over a call.
finish() {
	failing_log "$1"
	debug finish
	[ "$(val caller)" = vio_poll ]
	[ "$(val bt_frames)" -ge 3 ]                 # cmd_complete, vio_poll, ..., kmain
	# reverse-finish: in the caller, at the call, one instruction before the hit ...
	[ "$(val back_in)" = vio_poll ]
	[ "$(val is_call)" -eq 1 ]
	[ "$(val back_icount)" -eq $(($(val entry_icount) - 1)) ]
	# ... and stepi from there is the hit, registers and all
	[ "$(val again_same)" -eq 1 ]
	# reverse-next from after the call goes back over all of it, to before the call
	[ "$(val returned_in)" = vio_poll ]
	[ "$(val returned_icount)" -gt $(($(val entry_icount) + 1000)) ]
	[ "$(val over_in)" = vio_poll ]
	[ "$(val over_icount)" -lt "$(val entry_icount)" ]
	[ "$(val walk_same)" -eq 1 ]
}

@test "7.2: reverse-finish out of a completion handler, reverse-next back over the whole call: the states of the forward run" {
	finish 7.2
}

@test "10.0: reverse-finish out of a completion handler, reverse-next back over the whole call: the states of the forward run" {
	finish 10.0
}

# MOTION N times, reverse-MOTION N times: every stop of both walks is a
# state a stepi walk over the stretch passes through (gdb's backward walk in
# -O2 code need not stop where the forward one did, so that is what is asked).
lines() {
	failing_log "$1"
	MOTION=$2 STEPS=$3 debug lines
	[ "$(val unseen)" -eq 0 ]
	[ "$(val backwards)" -eq 1 ]
	[ "$(val moved)" -eq 1 ]
	[ "$(val stepi_walk)" -ge "$3" ]
}

@test "7.2: next 8 lines and reverse-next 8, step 12 and reverse-step 12: every stop is a state of the run" {
	lines 7.2 next 8
	lines 7.2 step 12
	[[ "$(val bw_funcs)" == *pattern* ]]         # reverse-step went back into a callee
}

@test "10.0: next 8 lines and reverse-next 8, step 12 and reverse-step 12: every stop is a state of the run" {
	lines 10.0 next 8
	lines 10.0 step 12
	[[ "$(val bw_funcs)" == *pattern* ]]
}

@test "7.2: gdb sees the 32-bit guest as i386; --gdb-arch=qemu gives QEMU's x86-64 description; both write registers" {
	failing_log 7.2
	debug when --stop-at=5000000
	[ "$(val arch)" = i386 ]
	[ "$(val ecx)" = 0x5a5a1234 ]
	local pc
	pc=$(val pc)
	X86_64=1 debug when --stop-at=5000000 --gdb-arch=qemu
	[ "$(val arch)" = i386:x86-64 ]
	[ "$(val pc)" = "$pc" ]
	[ "$(val ecx)" = 0x5a5a1234 ]
	run "$BHRR" replay fail.bhlog --gdb-arch=arm
	[ "$status" -eq 2 ]
	[[ "$output" == *"expected --gdb-arch=auto, i386 or qemu"* ]]
}

@test "--gdb refuses an ordering-mode log, naming why" {
	use_qemu 7.2
	guest_argv flaky "$BATS_TEST_TMPDIR"
	local argv=()
	for a in "${GUEST_ARGV[@]}"; do
		[ "$a" = "-icount" ] && { skip_next=1; continue; }
		[ -n "${skip_next:-}" ] && { skip_next=; continue; }
		argv+=("$a")
	done
	"$BHRR" record --as-is -o ord.bhlog -- "$QEMU_BIN" "${argv[@]}" >/dev/null 2>&1 || true
	[ -s ord.bhlog ]
	run "$BHRR" replay ord.bhlog --gdb
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--gdb needs an exact-mode log"*"ordering-mode log"*"no icount to stop at"* ]]
	run "$BHRR" debug ord.bhlog
	[ "$status" -eq 2 ]
}

# native_argv: the flaky guest under QEMU's own record/replay (MODE record or
# replay): its disk through blkreplay on a qcow2, snapshots in rr.qcow2.
native_argv() {
	local mode=$1 append
	append=$(guest_append flaky)
	NATIVE_ARGV=(-nodefaults -display none -accel tcg
		-icount "shift=0,rr=$mode,rrfile=native.rr,rrsnapshot=init"
		-rtc clock=vm,base=2020-01-01T00:00:00 -seed 1
		-kernel "$GUEST_DIR/guest.elf" -append "$append"
		-device isa-debug-exit,iobase=0xf4,iosize=1 -debugcon stdio
		-drive file=disk0.qcow2,if=none,id=img-direct
		-drive driver=blkreplay,if=none,image=img-direct,id=img-blkreplay
		-device virtio-blk-pci,drive=img-blkreplay,disable-modern=on
		-drive file=rr.qcow2,if=none,id=rr -net none)
}

pcs_native() {
	failing_log "$1"
	STEPS=50 debug pcs
	local ours
	ours=$(sed -n 's/^RESULT pcs //p' <<<"$output")
	[ -n "$ours" ]
	# bhrr's walk back is its walk forward, reversed
	fw=$(sed -n 's/.*fw=\([^ ]*\).*/\1/p' <<<"$ours")
	bw=$(sed -n 's/.*bw=\([^ ]*\).*/\1/p' <<<"$ours")
	[ "$(tr ',' '\n' <<<"$bw" | tac | paste -sd,)" = "$fw" ]
	[ "$(tr ',' '\n' <<<"$fw" | sort -u | wc -l)" -gt 10 ]
	# QEMU's own: record, then replay under gdb from its initial snapshot
	qemu-img convert -O qcow2 "$GUEST_DIR/disk.img" disk0.qcow2
	qemu-img create -q -f qcow2 rr.qcow2 64M
	native_argv record
	# shellcheck disable=SC2086
	"$QEMU_BIN" $QEMU_FW "${NATIVE_ARGV[@]}" >native-rec.out 2>&1 || true
	[ -s native.rr ]
	native_argv replay
	rm -f n.sock
	# shellcheck disable=SC2086
	"$QEMU_BIN" $QEMU_FW "${NATIVE_ARGV[@]}" -gdb "unix:$BATS_TEST_TMPDIR/n.sock,server=on,wait=off" \
		-S >native-rep.out 2>&1 &
	local pid=$! k
	for k in $(seq 600); do [ -S n.sock ] && break; sleep 0.1; done
	# QEMU's own reverse debugging does not always answer (QEMU sits idle, gdb
	# waits: doc/debug.md); bounded, and compared where it answers.  gdb waiting
	# on a remote can sit out timeout's SIGTERM (seen: 16 minutes), so -k kills it
	# 5 s later
	NATIVE=1 STEPS=50 SCENARIO=pcs TARGET="$BATS_TEST_TMPDIR/n.sock" \
		timeout -k 5 60 gdb -batch -nx -x "$BHRR_SRCDIR/tests/helper/gdb-scenario.py" \
		"$GUEST_DIR/guest.elf" >native-gdb.out 2>&1 || true
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" || true
	native=$(sed -n 's/^RESULT pcs //p' native-gdb.out)
	echo "bhrr:   $ours"
	if [ -z "$native" ]; then
		echo "native: no answer within 60 s; nothing to compare"
		return 0
	fi
	echo "native: $native"
	[ "$native" = "$ours" ]
}

@test "7.2: the same PCs for 50 stepi and 50 reverse-stepi as QEMU's native reverse debugging, where it answers" {
	pcs_native 7.2
}

@test "10.0: the same PCs for 50 stepi and 50 reverse-stepi as QEMU's native reverse debugging, where it answers" {
	pcs_native 10.0
}

@test "7.2: a chaos-recorded log debugs the same way: reverse-continue and reverse-stepi give the forward run's states" {
	use_qemu 7.2
	guest_argv flaky "$BATS_TEST_TMPDIR"
	# shellcheck disable=SC2086
	BHRR_CHAOS=7 "$BHRR" record --force -o fail.bhlog -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >rec.out 2>rec.err || true
	grep -q "chaos: seed 7" rec.err
	debug revcont
	[ "$(val hits)" -eq 32 ]
	[ "$(val regs_same)" -eq 1 ]
	[ "$(val memory_same)" -eq 1 ]
	STEPS=50 debug stepi --stop-at=7000000
	[ "$(val to)" -eq 7000050 ]
	[ "$(val differ)" -eq 0 ]
}

@test "7.2: a log recorded with -icount shift=3 debugs the same way: reverse-stepi and reverse-finish give the forward run's states" {
	use_qemu 7.2
	guest_argv flaky "$BATS_TEST_TMPDIR"
	local argv=("${GUEST_ARGV[@]/shift=0,sleep=off/shift=3,sleep=off}")
	[[ "${argv[*]}" == *"-icount shift=3,sleep=off"* ]]
	"$BHRR" record --force -o fail.bhlog -- "$QEMU_BIN" "${argv[@]}" >rec.out 2>rec.err || true
	"$BHRR" dump fail.bhlog | grep -q 'shift=3,sleep=off'
	STEPS=20 debug stepi --stop-at=100000
	[ "$(val to)" -eq 100020 ]
	[ "$(val differ)" -eq 0 ]
	debug finish
	[ "$(val is_call)" -eq 1 ]
	[ "$(val back_icount)" -eq $(($(val entry_icount) - 1)) ]
	[ "$(val again_same)" -eq 1 ]
	[ "$(val walk_same)" -eq 1 ]
}
