#!/usr/bin/env bats
# Faults, as a matrix, on the real QEMU 7.2 (and 10.0 where cheap): QEMU
# killed at 20 points of a record, the log's file system filling up, bad
# logs handed to replay, host-timed input bhrr does not cover, signals at
# each stage of a replay, and seeded tamperings of a recorded log.  Every
# moment is forced from the run's progress (completions in a live log, a
# line on stderr), never from a sleep; what is asserted holds whatever the
# host's timing.
#
# BHRR_FAULT_TAMPERS (default 200, about 2.5 min; 1,000 took 745 s) sets
# how many tampered logs are replayed, BHRR_FAULT_SEED (default 1) which.

load helper

TOOL="$BHRR_BUILDDIR/tests/helper/bhrr-test-tool"

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	T=$BATS_TEST_TMPDIR
	LOG="$T/run.bhlog"
}

teardown() {
	if [ -n "${FULL_MNT:-}" ] && mountpoint -q "$FULL_MNT"; then
		umount "$FULL_MNT"
	fi
}

# note MESSAGE: a line in the TAP output whether the test passes or not
# (counts and outcomes the report needs; bats shows other output only on
# failure)
# completions LOG: the io_complete events LOG holds now.
completions() {
	"$BHRR" dump --json "$1" 2>/dev/null | grep -c '"kind":"io_complete"' || true
}

# wait_line FILE PATTERN PID: wait until FILE has a line matching PATTERN;
# fails if PID ends without one, or after 5 min.
wait_line() {
	local i
	for i in $(seq 1 6000); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		if ! kill -0 "$3" 2>/dev/null; then
			grep -q -- "$2" "$1" 2>/dev/null && return 0
			echo "wait_line: process $3 ended without '$2' in $1"
			return 1
		fi
		sleep 0.05
	done
	echo "wait_line: '$2' never appeared in $1"
	return 1
}

# refute_in FILE PATTERN: fail, showing the lines, if FILE matches PATTERN
# (a bare '! grep' in the middle of a bats test never fails it).
refute_in() {
	if grep -- "$2" "$1"; then
		echo "unexpected in $1: $2"
		return 1
	fi
}

# long_argv DIR: the virtio guest with 4,000 commands of 64 sectors, on
# fresh disks in DIR: a run far longer than anything here waits for.
long_argv() {
	guest_argv virtio "$1"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=4000 count=64}")
}

# ---- 1. SIGKILL at 20 moments of a record ----

# kill_and_replay VERSION K STEP: record the long guest and SIGKILL QEMU once
# the live log holds K*STEP completions (through 'bhrr record' for even K,
# preloaded by hand for odd K); the log must verify as an intact,
# incomplete prefix, and its replay on fresh disks must follow every
# recorded event to the end of the log, then run free (stopped by SIGTERM
# once it says so).
kill_and_replay() {
	local v=$1 k=$2 want=$(($2 * $3)) pid qpid st n line
	use_qemu "$v"
	rm -f "$LOG" "$T/rep.bhlog"
	long_argv "$T"
	if [ $((k % 2)) -eq 0 ]; then
		# shellcheck disable=SC2086
		"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >/dev/null 2>"$T/rec.err" &
		pid=$!
		wait_events "$LOG" "$want" "$pid"
		qpid=$(pgrep -P "$pid")
		kill -KILL "$qpid"
		st=0
		wait "$pid" || st=$?
		# bhrr record ends as QEMU did and says the log is incomplete
		[ "$st" -eq 137 ]
		grep -q "bhrr: record: .* in $LOG (incomplete)" "$T/rec.err"
	else
		# shellcheck disable=SC2086
		BHRR_MODE=record BHRR_LOG="$LOG" LD_PRELOAD="$SHIM" "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >/dev/null 2>&1 &
		pid=$!
		wait_events "$LOG" "$want" "$pid"
		kill -KILL "$pid"
		st=0
		wait "$pid" || st=$?
		[ "$st" -eq 137 ]
	fi
	run "$BHRR" verify "$LOG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"incomplete (no end event"* ]]
	n=$(completions "$LOG")
	[ "$n" -ge "$want" ]
	long_argv "$T"
	# shellcheck disable=SC2086
	"$BHRR" replay "$LOG" -o "$T/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >/dev/null 2>"$T/rep.err" &
	pid=$!
	wait_line "$T/rep.err" 'recorded control ended' "$pid"
	# the free run that follows is the rest of the guest (about 3 s): stop it, unless it
	# already ended - on a loaded host this poll can come after the guest's last command
	kill -TERM "$pid" 2>/dev/null || true
	st=0
	wait "$pid" || st=$?
	# ended by the TERM (QEMU exits 0 on it, or dies of it), or the guest finished: never a crash
	[ "$st" -eq 0 ] || [ "$st" -eq 143 ] || [ "$st" -eq "$GUEST_PASS" ] || { cat "$T/rep.err"; false; }
	line=$(grep 'recorded control ended' "$T/rep.err")
	echo "QEMU $v, kill $k at >= $want completions ($n in the log): ${line#bhrr: replay: }"
	note "QEMU $v, SIGKILL $k at >= $want completions ($n in the log): ${line#bhrr: replay: }"
	[ "$(grep -c 'recorded control ended' "$T/rep.err")" -eq 1 ]
	grep -Eq 'after ([1-9][0-9]*) of \1 recorded events \(end of the log;' <<<"$line"
	refute_in "$T/rep.err" divergence
	KILLS=$((KILLS + 1))
}

@test "QEMU 7.2 killed by SIGKILL at 20 points of a record leaves 20 prefix logs, each replayed through all its events, then free" {
	KILLS=0
	for k in $(seq 1 20); do
		kill_and_replay 7.2 "$k" 25
	done
	[ "$KILLS" -eq 20 ]
}

@test "QEMU 10.0 killed by SIGKILL at 5 points of a record leaves 5 prefix logs, each replayed through all its events, then free" {
	KILLS=0
	for k in 1 2 7 14 20; do
		kill_and_replay 10.0 "$k" 25
	done
	[ "$KILLS" -eq 5 ]
}

# ---- 2. the log's file system fills up mid-record ----

# disk_full VERSION: record ide-pio (a 19 KB log) onto a 64 KiB tmpfs with
# 8 KiB free
disk_full() {
	local v=$1 st msg k last
	use_qemu "$v"
	FULL_MNT="$T/full"
	mkdir -p "$FULL_MNT"
	mount -t tmpfs -o size=64k bhrr-faults "$FULL_MNT"
	head -c $((56 * 1024)) /dev/zero >"$FULL_MNT/filler"
	guest_argv ide-pio "$T"
	st=0
	# shellcheck disable=SC2086
	"$BHRR" record -o "$FULL_MNT/run.bhlog" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$T/rec.out" 2>"$T/rec.err" || st=$?
	echo "QEMU $v: status $st"
	cat "$T/rec.err"
	# QEMU ran on: the guest finished and passed
	[ "$st" -eq "$GUEST_PASS" ]
	grep -q '^digest=' "$T/rec.out"
	# said once, with the first event lost
	[ "$(grep -c 'cannot write log' "$T/rec.err")" -eq 1 ]
	msg=$(grep 'cannot write log' "$T/rec.err")
	[[ "$msg" == *"cannot write log '$FULL_MNT/run.bhlog': No space left on device; nothing from event #"*" on was written"* ]]
	k=$(sed -n 's/.*nothing from event #\([0-9]*\) on.*/\1/p' <<<"$msg")
	grep -q "in $FULL_MNT/run.bhlog (incomplete)" "$T/rec.err"
	# the log is the prefix of events 0 .. k-1
	run "$BHRR" verify "$FULL_MNT/run.bhlog"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"incomplete (no end event"* ]]
	last=$("$BHRR" dump --json "$FULL_MNT/run.bhlog" | tail -n 1 | jq .seq)
	echo "nothing from event #$k on; the log ends at event #$last"
	note "QEMU $v, disk full: status $st, nothing from event #$k on, the log ends at event #$last"
	[ "$k" -gt 0 ]
	[ "$last" -eq $((k - 1)) ]
	umount "$FULL_MNT"
}

@test "a log file system that fills up mid-record leaves QEMU running, one message naming the first event lost, and a prefix log" {
	[ "$(id -u)" -eq 0 ] || skip "mounting a tmpfs needs root"
	disk_full 7.2
	disk_full 10.0
}

# ---- 3. bad logs refused before QEMU starts ----

# refused LOG STATUS MESSAGE [COMMAND PREFIX...]: 'bhrr replay LOG' exits
# STATUS naming MESSAGE, without ever starting QEMU: no output log, no
# guest output.
refused() {
	local log=$1 want=$2 msg=$3 st
	shift 3
	use_qemu 7.2
	guest_argv virtio "$T"
	rm -f "$T/rep.bhlog"
	st=0
	"$@" timeout 30 "$BHRR" replay "$log" -o "$T/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" \
		>"$T/rep.out" 2>"$T/rep.err" || st=$?
	echo "$log: status $st: $(cat "$T/rep.err")"
	note "refused: status $st: $(grep -v 'warning: the QEMU command line differs' "$T/rep.err" | head -n 1)"
	[ "$st" -eq "$want" ]
	grep -qF -- "$msg" "$T/rep.err"
	[ ! -e "$T/rep.bhlog" ]
	[ ! -s "$T/rep.out" ]
}

# record_short VERSION CONFIG [N]: a complete recording of CONFIG with N
# commands (default: the configuration's) in $LOG; guest output in rec.out
record_short() {
	use_qemu "$1"
	guest_argv "$2" "$T"
	[ -z "${3:-}" ] || GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=$3}")
	REC_STATUS=0
	# shellcheck disable=SC2086
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >"$T/rec.out" 2>"$T/rec.err" || REC_STATUS=$?
	[ "$REC_STATUS" -eq "$GUEST_PASS" ]
}

@test "replay refuses, before QEMU starts, a log it cannot open: a missing directory, no read permission, a directory, a FIFO, a /proc file" {
	record_short 7.2 virtio
	refused "$T/nodir/run.bhlog" 1 "cannot open log '$T/nodir/run.bhlog': No such file or directory"
	# root reads a mode-000 file: drop the capabilities that let it
	cp "$LOG" "$T/locked.bhlog"
	chmod 000 "$T/locked.bhlog"
	if [ "$(id -u)" -eq 0 ]; then
		refused "$T/locked.bhlog" 1 "cannot open log '$T/locked.bhlog': Permission denied" \
			setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search --
	else
		refused "$T/locked.bhlog" 1 "cannot open log '$T/locked.bhlog': Permission denied"
	fi
	mkdir "$T/dir.bhlog"
	refused "$T/dir.bhlog" 1 "$T/dir.bhlog: not a regular file"
	# a FIFO nobody writes: refused, not waited on (timeout 30 would give 124)
	mkfifo "$T/fifo.bhlog"
	refused "$T/fifo.bhlog" 1 "$T/fifo.bhlog: not a regular file"
	refused /proc/self/status 1 "/proc/self/status: empty file, not a bhrr log"
}

@test "replay refuses, before QEMU starts, a log cut short inside its header, naming where it ends" {
	record_short 7.2 virtio
	for bytes in 8 12 17 40 100; do
		cp "$LOG" "$T/cut.bhlog"
		"$TOOL" truncate "$T/cut.bhlog" "$bytes"
		refused "$T/cut.bhlog" 1 "$T/cut.bhlog: the log header is cut short (the file ends at byte $bytes)"
	done
	# too short to tell
	"$TOOL" truncate "$T/cut.bhlog" 5
	refused "$T/cut.bhlog" 1 "$T/cut.bhlog: not a bhrr log (no BHRRLOG header at the start)"
}

@test "replay refuses, before QEMU starts, a log of a foreign QEMU build and one of a future format version" {
	record_short 7.2 virtio
	"$TOOL" build-id "$LOG" "$T/foreign.bhlog" 00112233445566778899aabbccddeeff00112233
	refused "$T/foreign.bhlog" 2 "$T/foreign.bhlog was recorded with QEMU build 00112233445566778899aabbccddeeff00112233 (7.2."
	grep -qF "; $QEMU_BIN is build d9541fd67c4ea37f9ca7fca0f5096f32b3b7e7e0; refusing (--force tries anyway)" "$T/rep.err"
	cp "$LOG" "$T/future.bhlog"
	"$TOOL" setbyte "$T/future.bhlog" 16 8
	refused "$T/future.bhlog" 1 "$T/future.bhlog: log format version 8, but this bhrr reads version 7 (upgrade bhrr)"
}

@test "replay refuses, before QEMU starts, a log whose exact icounts go back or run past the end of the run" {
	local seqs first last
	record_short 7.2 virtio
	seqs=$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "io_complete" and .icount_exact) | .seq')
	first=$(head -n 1 <<<"$seqs")
	# the last action (log_action.h): a completion, or a BH run after it (notify_guest_bh)
	last=$("$BHRR" dump --json "$LOG" | jq -r 'select((.kind == "io_complete" or (.kind == "bh_run" and
		.name != "thread_pool_completion_bh")) and .icount_exact and (.at_once | not)) | .seq' | tail -n 1)
	# the first completion moved 2^40 instructions on: the next action is before it
	"$TOOL" tamper "$LOG" "$T/bad.bhlog" "$first" icount $((1 << 40))
	refused "$T/bad.bhlog" 1 "$T/bad.bhlog: recorded event #"
	grep -Eq "is at icount [0-9]+, before event #$first at icount [0-9]+, but exact icounts never go back; refusing" "$T/rep.err"
	# the last action moved on: past the end event's icount
	"$TOOL" tamper "$LOG" "$T/bad.bhlog" "$last" icount $((1 << 40))
	refused "$T/bad.bhlog" 1 "$T/bad.bhlog: recorded event #$last is at icount "
	grep -Eq ", past the end of the run at icount [0-9]+; refusing" "$T/rep.err"
}

# replay_now ARGS...: bhrr replay $LOG on the command line GUEST_ARGV as it is
# now (disks as the test left them); status in st, stderr in rep.err
replay_now() {
	rm -f "$T/rep.bhlog"
	st=0
	timeout 60 "$BHRR" replay "$@" "$LOG" -o "$T/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" \
		>"$T/rep.out" 2>"$T/rep.err" || st=$?
	echo "status $st: $(cat "$T/rep.err")"
}

@test "replay refuses, before QEMU starts, a changed disk image or qcow2 backing file, naming the drive and the file; --force replays anyway" {
	record_short 7.2 virtio
	"$BHRR" dump "$LOG" | grep -F "# image drive d0: $T/disk0.img, 1048576 bytes, xxh3 "
	"$BHRR" dump "$LOG" | grep -F "# image kernel: $GUEST_DIR/guest.elf, "
	# the disk as it was: replays
	guest_argv virtio "$T"
	replay_now
	[ "$st" -eq "$GUEST_PASS" ]
	# one byte changed, size kept
	guest_argv virtio "$T"
	printf 'X' | dd of="$T/disk0.img" bs=1 seek=4096 conv=notrunc 2>/dev/null
	replay_now
	[ "$st" -eq 2 ]
	grep -qF "bhrr: replay: $LOG: drive d0 ($T/disk0.img) is not the file the recording read: it has 1048576 bytes with xxh3 " "$T/rep.err"
	grep -qF "(restore it as it was when the recording started); refusing (--force tries anyway)" "$T/rep.err"
	[ ! -e "$T/rep.bhlog" ] && [ ! -s "$T/rep.out" ]
	# gone
	rm "$T/disk0.img"
	replay_now
	[ "$st" -eq 2 ]
	grep -qF "drive d0 ($T/disk0.img): cannot read it: No such file or directory; the recording read 1048576 bytes with xxh3 " "$T/rep.err"
	# --force: said, and replayed
	guest_argv virtio "$T"
	printf 'X' | dd of="$T/disk0.img" bs=1 seek=4096 conv=notrunc 2>/dev/null
	replay_now --force
	grep -qF "is not the file the recording read" "$T/rep.err"
	grep -qF "replaying anyway (--force)" "$T/rep.err"
	[ -e "$T/rep.bhlog" ]

	# a qcow2 overlay under -snapshot: its backing file is read too
	cp "$GUEST_DIR/disk.img" "$T/base.img"
	qemu-img create -q -f qcow2 -b "$T/base.img" -F raw "$T/over.qcow2"
	guest_argv virtio "$T"
	GUEST_ARGV=("${GUEST_ARGV[@]/file=$T\/disk0.img,format=raw/file=$T/over.qcow2,format=qcow2}" -snapshot)
	rm -f "$LOG"
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >"$T/rec.out" 2>"$T/rec.err" || true
	"$BHRR" dump "$LOG" | grep -F "# image drive d0: $T/over.qcow2, "
	"$BHRR" dump "$LOG" | grep -F "# image drive d0 backing 1: $T/base.img, 1048576 bytes, xxh3 "
	printf 'X' | dd of="$T/base.img" bs=1 seek=512 conv=notrunc 2>/dev/null
	replay_now
	[ "$st" -eq 2 ]
	grep -qF "drive d0 backing 1 ($T/base.img) is not the file the recording read" "$T/rep.err"
	[ ! -e "$T/rep.bhlog" ]
}

@test "a log cut short mid-events replays its intact prefix and says where recorded control ended" {
	local size full part
	record_short 7.2 ide-pio
	guest_argv ide-pio "$T"
	st=0
	"$BHRR" replay "$LOG" -o "$T/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >"$T/rep.out" 2>"$T/rep.err" || st=$?
	[ "$st" -eq "$GUEST_PASS" ]
	full=$(sed -n 's/.*after \([0-9]*\) of \1 recorded events (end of the log;.*/\1/p' "$T/rep.err")
	cmp "$T/rec.out" "$T/rep.out"
	size=$("$TOOL" size "$LOG")
	for frac in 2 3 5; do
		cp "$LOG" "$T/cut.bhlog"
		"$TOOL" truncate "$T/cut.bhlog" $((size * (frac - 1) / frac + 3))
		run "$BHRR" verify "$T/cut.bhlog"
		[ "$status" -eq 0 ]
		[[ "$output" == *"incomplete (no end event"*"torn tail of"* ]]
		guest_argv ide-pio "$T"
		st=0
		timeout 60 "$BHRR" replay "$T/cut.bhlog" -o "$T/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" \
			>"$T/rep.out" 2>"$T/rep.err" || st=$?
		part=$(sed -n 's/.*after \([0-9]*\) of \1 recorded events (end of the log;.*/\1/p' "$T/rep.err")
		echo "cut at $(((frac - 1) * 100 / frac))%: status $st, recorded control ended after ${part:-?} of $full actions"
		note "cut at $(((frac - 1) * 100 / frac))%: status $st, recorded control ended after ${part:-?} of ${part:-?} (the whole log: $full)"
		[ "$st" -eq "$GUEST_PASS" ]
		[ -n "$part" ] && [ "$part" -gt 0 ] && [ "$part" -lt "$full" ]
		refute_in "$T/rep.err" divergence
	done
}

# ---- 4. host-timed input bhrr does not cover ----

# A device that waits in the vCPU thread.  The guest soft-resets an IDE
# channel while a DMA read runs (reset=3): QEMU drains the disk in the vCPU
# thread, a nested aio_poll waiting for the read.  The record's read is kept
# in flight (BHRR_TEST_SLOW_IO_US), so it completes inside that poll, at once.
# A replay parks before every action (BHRR_TEST_PARK), so the read's
# completion has usually arrived, and been kept, before the reset: replay
# must run it at once in the poll, as the record did.  It once kept it for a
# later action that never comes, and the vCPU, holding the BQL, waited
# forever, deaf to SIGTERM (a Linux guest's replay under load, 10+ minutes).
# Asserted: identical output 3 times, within the timeout; how often the kept
# completion was run in the poll is reported.
@test "a device reset that drains the disk in the vCPU thread replays identically, never deadlocking on a kept completion" {
	local v st ran total=0
	for v in 7.2 10.0; do
		use_qemu "$v"
		guest_argv reset "$T"
		rm -f "$LOG"
		st=0
		# shellcheck disable=SC2086
		BHRR_TEST_SLOW_IO_US=20000 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
			>"$T/rec.out" 2>"$T/rec.err" || st=$?
		[ "$st" -eq "$GUEST_PASS" ]
		note "QEMU $v record: $("$BHRR" dump "$LOG" | grep -c 'nested_poll.*role=vcpu') nested polls of the vCPU thread," \
			"$("$BHRR" dump "$LOG" | grep -c 'io_complete.*at_once') completions at once"
		for _ in 1 2 3; do
			guest_argv reset "$T"
			st=0
			# shellcheck disable=SC2086
			BHRR_VERBOSE=1 BHRR_TEST_PARK=1 timeout -k 5 120 "$BHRR" replay "$LOG" -o "$T/rep.bhlog" -- \
				"$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >"$T/rep.out" 2>"$T/rep.err" || st=$?
			ran=$(grep -c 'nested aio_poll of the vCPU thread runs [0-9]* kept items' "$T/rep.err" || true)
			total=$((total + ran))
			echo "QEMU $v replay: status $st, kept items run in the poll $ran times"
			[ "$st" -eq "$GUEST_PASS" ]
			cmp "$T/rec.out" "$T/rep.out"
			! grep -q divergence "$T/rep.err" || false
		done
	done
	note "kept completions run in a vCPU-thread nested poll: $total times in 6 replays"
}

# ---- 5. signals at any point of a replay ----

# signal_replay VERSION WHAT POINT: replay $LONG (virtio, 1,000 commands)
# and deliver WHAT (TERM, INT, or quit over QMP) at POINT: early (once the
# replay's live log holds 1 completion), held (20, with every completion
# held back 20 ms) or parked (20, with BHRR_TEST_PARK=1 too, so the vCPU
# has parked for every action so far).  QEMU must exit within 3 s of it,
# saying once where recorded control ended and what was still held.
signal_replay() {
	local v=$1 what=$2 point=$3 n=20 port t0 knobs=()
	case $point in
	early) n=1 ;;
	held) knobs=(BHRR_TEST_DELAY_US=20000) ;;
	parked) knobs=(BHRR_TEST_PARK=1 BHRR_TEST_DELAY_US=20000) ;;
	esac
	guest_argv virtio "$T"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=1000}")
	port=$((20000 + RANDOM % 20000))
	rm -f "$T/rep.bhlog"
	# shellcheck disable=SC2086
	env "${knobs[@]}" "$BHRR" replay "$LONG" -o "$T/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		-qmp "tcp:127.0.0.1:$port,server=on,wait=off" >/dev/null 2>"$T/rep.err" &
	pid=$!
	wait_events "$T/rep.bhlog" "$n" "$pid"
	if [ "$what" = quit ]; then
		exec 5<>"/dev/tcp/127.0.0.1/$port"
		printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"quit"}' >&5
	else
		kill "-$what" "$pid"
	fi
	t0=$(date +%s%N)
	wait "$pid" || true
	EXIT_MS=$((($(date +%s%N) - t0) / 1000000))
	[ "$what" != quit ] || exec 5>&-
	echo "QEMU $v, $what when $point: exited after $EXIT_MS ms; $(grep -h 'recorded control ended\|were held' "$T/rep.err" | sed 's/^bhrr: replay: //' | tr '\n' ' ')"
	note "QEMU $v, $what when $point: exited after $EXIT_MS ms; $(grep -h 'recorded control ended\|were held' "$T/rep.err" | sed 's/^bhrr: replay: //' | tr '\n' ' ')"
	[ "$EXIT_MS" -lt 3000 ]
	[ "$(grep -c 'recorded control ended' "$T/rep.err")" -eq 1 ]
	grep -Eq 'running free, nothing held$|[0-9]+ BHs and [0-9]+ completions were held for later events' "$T/rep.err"
	[ "$point" != parked ] || grep -Eq 'recorded control ended.*; [1-9][0-9]* parks\)' "$T/rep.err"
	run "$BHRR" verify "$T/rep.bhlog"
	[ "$status" -eq 0 ]
}

@test "QEMU 7.2 exits within 3 s of SIGTERM, SIGINT or QMP quit early in a replay, with completions held back, and with the vCPU parked, saying what was held" {
	record_short 7.2 virtio 1000
	LONG="$T/long.bhlog"
	mv "$LOG" "$LONG"
	for point in early held parked; do
		for what in TERM INT quit; do
			signal_replay 7.2 "$what" "$point"
		done
	done
}

@test "QEMU 10.0 exits within 3 s of SIGTERM, SIGINT or QMP quit during a replay, saying what was held" {
	record_short 10.0 virtio 1000
	LONG="$T/long.bhlog"
	mv "$LOG" "$LONG"
	signal_replay 10.0 TERM early
	signal_replay 10.0 INT held
	signal_replay 10.0 quit parked
}

@test "a replay that ends by the guest's own poweroff says it followed every recorded event and what was held" {
	record_short 7.2 virtio
	guest_argv virtio "$T"
	st=0
	"$BHRR" replay "$LOG" -o "$T/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >"$T/rep.out" 2>"$T/rep.err" || st=$?
	cat "$T/rep.err"
	[ "$st" -eq "$GUEST_PASS" ]
	cmp "$T/rec.out" "$T/rep.out"
	[ "$(grep -c 'recorded control ended' "$T/rep.err")" -eq 1 ]
	grep -Eq 'after ([1-9][0-9]*) of \1 recorded events \(end of the log;' "$T/rep.err"
	grep -Eq 'running free, nothing held$|[0-9]+ BHs and [0-9]+ completions were held for later events' "$T/rep.err"
}

# ---- 6. seeded tamperings of one recorded log ----

# rand: the next number of a 64-bit LCG seeded by $RNG (31 bits)
rand() {
	RNG=$((RNG * 6364136223846793005 + 1442695040888963407))
	R=$(((RNG >> 33) & 0x7fffffff))
}

# tamper_one I SEQ FIELD DELTA: replay the tampered log I in slot directory
# $T/slot$((I % 2)); append "I SEQ FIELD DELTA OUTCOME DETAIL" to outcomes
tamper_one() {
	local i=$1 seq=$2 field=$3 delta=$4 dir="$T/slot$(($1 % 2))" st out detail
	mkdir -p "$dir"
	if ! "$TOOL" tamper "$LOG" "$dir/bad.bhlog" "$seq" "$field" "$delta" 2>"$dir/tamper.err"; then
		echo "$i $seq $field $delta tool-failed $(cat "$dir/tamper.err")" >>"$T/outcomes"
		return
	fi
	guest_argv ide-pio "$dir"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=8}")
	st=0
	BHRR_WATCHDOG_MS=1000 timeout 60 "$BHRR" replay "$dir/bad.bhlog" -o "$dir/rep.bhlog" -- \
		"$QEMU_BIN" "${GUEST_ARGV[@]}" >"$dir/rep.out" 2>"$dir/rep.err" || st=$?
	detail=
	if [ "$st" -eq 124 ]; then
		out=timeout
	elif [ "$st" -ge 128 ]; then
		out=crash
	elif [ "$st" -eq 4 ] && grep -q 'divergence at recorded event #' "$dir/rep.err"; then
		out=divergence
		detail=$(grep -o 'divergence at recorded event #.*' "$dir/rep.err" | head -n 1 | sed 's/ at icount [0-9-]*//; s/[0-9][0-9]*/N/g')
	elif { [ "$st" -eq 1 ] || [ "$st" -eq 2 ]; } && grep -q '^bhrr: replay: ' "$dir/rep.err" && [ ! -e "$dir/rep.bhlog" ]; then
		out=refused
		detail=$(grep -v 'warning: the QEMU command line differs' "$dir/rep.err" | head -n 1)
	elif [ "$st" -eq "$REC_STATUS" ] && cmp -s "$T/rec.out" "$dir/rep.out" && ! grep -q divergence "$dir/rep.err"; then
		out=identical
	elif ! grep -q divergence "$dir/rep.err" &&
		grep -Eq 'after ([0-9]+) of \1 recorded events \(end of the log;' "$dir/rep.err" &&
		"$BHRR" diff "$dir/bad.bhlog" "$dir/rep.bhlog" >"$dir/diff.out" 2>&1; then
		# a tampering that left a consistent log (a completion a few
		# instructions earlier, still after the one before it): the guest
		# saw it there, as the altered log says; the replay's own log has
		# the very same actions
		out=followed
		detail="status $st"
	else
		out=other
		detail="status $st: $(tr '\n' ' ' <"$dir/rep.err")"
	fi
	rm -f "$dir/rep.bhlog"
	echo "$i $seq $field $delta $out $detail" >>"$T/outcomes"
}

@test "seeded tamperings of a recorded log (BHRR_FAULT_TAMPERS, default 200) each end in a named divergence, a precise refusal, identical output or the altered log followed exactly, never a crash or a hang" {
	local count=${BHRR_FAULT_TAMPERS:-200} i seq field delta t0 n_actions n_events
	local -a actions
	RNG=${BHRR_FAULT_SEED:-1}
	record_short 7.2 ide-pio 8
	mapfile -t actions < <("$BHRR" dump --json "$LOG" | jq -r 'select((.kind == "io_complete" or .kind == "bh_run" or .kind == "warp") and .icount_exact) | .seq')
	n_actions=${#actions[@]}
	n_events=$("$BHRR" dump --json "$LOG" | jq -s 'map(select(.kind != "end")) | length')
	echo "tampering $count times (seed ${BHRR_FAULT_SEED:-1}) one log of $n_events events, $n_actions of them actions"
	[ "$n_actions" -gt 10 ]
	: >"$T/outcomes"
	t0=$(date +%s)
	for ((i = 0; i < count; i++)); do
		rand
		if [ $((R % 4)) -ne 0 ]; then
			rand
			seq=${actions[R % n_actions]}
		else
			rand
			seq=$((R % n_events))
		fi
		rand
		case $((R % 4)) in 0 | 1) field=icount ;; 2) field=req ;; *) field=ident ;; esac
		rand
		case $((R % 8)) in
		0) delta=1 ;;
		1) delta=-1 ;;
		2) rand; delta=$((R % 100 + 2)) ;;
		3) rand; delta=$((-(R % 100 + 2))) ;;
		4) rand; delta=$((R % 1000000)) ;;
		5) rand; delta=$((-(R % 1000000))) ;;
		6) delta=$((1 << 40)) ;;
		*) rand; delta=$((-(R % 1000000000) - 1)) ;;
		esac
		# two replays at a time
		tamper_one "$i" "$seq" "$field" "$delta" &
		[ $((i % 2)) -eq 0 ] || wait
	done
	wait
	{
		echo "$count replays in $(($(date +%s) - t0)) s (seed ${BHRR_FAULT_SEED:-1}):"
		awk '{ print $5 }' "$T/outcomes" | sort | uniq -c
		echo "divergences, by what was named:"
		awk '$5 == "divergence" { $1 = $2 = $3 = $4 = $5 = ""; print }' "$T/outcomes" | sort | uniq -c | sort -rn | head -n 12
		echo "refusals:"
		awk '$5 == "refused" { $1 = $2 = $3 = $4 = $5 = ""; print }' "$T/outcomes" | sed 's/[0-9][0-9]*/N/g' | sort | uniq -c
	} >"$T/summary"
	cat "$T/summary"
	sed 's/^/# /' "$T/summary" >&3
	[ "$(wc -l <"$T/outcomes")" -eq "$count" ]
	# every replay ended in one of the accepted ways
	awk '$5 != "divergence" && $5 != "refused" && $5 != "identical" && $5 != "followed"' "$T/outcomes" >"$T/bad"
	refute_in "$T/bad" .
}
