#!/usr/bin/env bats
# bhrr replay on the real QEMU 7.2 and 10.0: a recorded run of each bundled
# guest happens again, its debugcon output byte for byte the same (every
# completion at the same virtual TSC), with parking forced by delays, and
# flaky verdicts kept.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# record_config VERSION CONFIG: record once; the output in $BATS_TEST_TMPDIR/rec.out.
record_config() {
	use_qemu "$1"
	guest_argv "$2" "$BATS_TEST_TMPDIR"
	# shellcheck disable=SC2086
	rm -f "$LOG" # a log is never overwritten without --force
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/rec.out" 2>/dev/null || REC_STATUS=$?
}

# replay_config VERSION CONFIG [OPTION]: replay $LOG on fresh disks; sets REP_STATUS,
# the guest's output in rep.out and bhrr's messages in $output.
replay_config() {
	guest_argv "$2" "$BATS_TEST_TMPDIR"
	REP_STATUS=0
	# shellcheck disable=SC2086
	timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" ${3:-} -- "$QEMU_BIN" $QEMU_FW \
		"${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || REP_STATUS=$?
	output=$(cat "$BATS_TEST_TMPDIR/rep.err")
}

# every configuration: record once, replay N times, outputs identical
assert_replays() {
	local v=$1 n=$2 config
	for config in $GUEST_CONFIGS; do
		REC_STATUS=0
		record_config "$v" "$config"
		for i in $(seq 1 "$n"); do
			replay_config "$v" "$config"
			if ! cmp -s "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"; then
				echo "QEMU $v $config: replay $i differs from the recording"
				echo "$output"
				diff "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out" | head -5
				false
			fi
			echo "QEMU $v $config replay $i: status $REP_STATUS (recorded ${REC_STATUS:-0})"
			[ "$REP_STATUS" -eq "${REC_STATUS:-0}" ]
			# no divergence; where recorded control ended, it was after every event
			! grep -q divergence <<<"$output" || false
			! grep 'recorded control ended' <<<"$output" | grep -qv 'after \([0-9]*\) of \1 recorded' || false
		done
		echo "QEMU $v $config: $n replays identical"
	done
}

@test "every bundled guest replays byte-identically on QEMU 7.2 (10 replays each)" {
	assert_replays 7.2 10
}

@test "every bundled guest replays byte-identically on QEMU 10.0 (10 replays each)" {
	assert_replays 10.0 10
}

# io_landed VERSION: a polling guest's completions land at its device
# accesses (io_land.h) and its replay runs them there.  With the fallback
# kick put off for 10 s, a completion that arrives while the vCPU polls can
# land nowhere else, and the ide-pio guest polls from each command until
# its completion (it never halts meanwhile): so every exact completion is
# at_io, whatever the host's timing.  With BHRR_TEST_NO_IO_LAND=1 none is.
io_landed() {
	local n all st
	use_qemu "$1"
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	rm -f "$LOG"
	# shellcheck disable=SC2086
	BHRR_TEST_LAND_FALLBACK_US=10000000 BHRR_VERBOSE=1 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW \
		"${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || st=$?
	[ "${st:-0}" -eq "$GUEST_PASS" ]
	grep -E "[1-9][0-9]* landings at I/O accesses, 0 kicks after none came" "$BATS_TEST_TMPDIR/rec.err"
	"$BHRR" dump --json "$LOG" >"$BATS_TEST_TMPDIR/ev"
	all=$(jq -s '[.[] | select(.kind == "io_complete" and .icount_exact)] | length' "$BATS_TEST_TMPDIR/ev")
	n=$(jq -s '[.[] | select(.kind == "io_complete" and .icount_exact and .at_io)] | length' "$BATS_TEST_TMPDIR/ev")
	note "QEMU $1 ide-pio: $n of $all exact completions landed at a device access"
	[ "$all" -ge 64 ]
	[ "$n" -eq "$all" ]
	"$BHRR" dump "$LOG" | grep -q ' at_io$'
	for _ in 1 2 3; do
		replay_config "$1" ide-pio
		echo "$output"
		[ "$REP_STATUS" -eq "$GUEST_PASS" ]
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		grep -q "after \([0-9]*\) of \1 recorded events (end of the log" <<<"$output"
		# the replay's own log has them at the same places
		[ "$("$BHRR" dump --json "$BATS_TEST_TMPDIR/rep.bhlog" | jq -s '[.[] | select(.kind == "io_complete" and .at_io)] | length')" -eq "$n" ]
	done
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	rm -f "$LOG"
	# shellcheck disable=SC2086
	BHRR_TEST_NO_IO_LAND=1 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>/dev/null || true
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.at_io)] | length')" -eq 0 ]
	replay_config "$1" ide-pio
	cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
}

@test "QEMU 7.2: a polling guest's completions land at its device accesses, and replay runs them there" {
	io_landed 7.2
}

@test "QEMU 10.0: a polling guest's completions land at its device accesses, and replay runs them there" {
	io_landed 10.0
}

# ioeventfd VERSION: virtio-blk with QEMU's default ioeventfd=on.  A notify
# write only signals an eventfd; bhrr runs the queue's handler in that write
# (gate_notify.h), so the rings are read at the write's icount in record and
# replay alike.  How many kicks ran there is the guest's doing, not the
# host's: every notify write is one.  Once the main loop ran them at host-timed
# icounts, and replays diverged or handed the guest other commands' data.
ioeventfd() {
	local st kicks
	use_qemu "$1"
	guest_argv virtio "$BATS_TEST_TMPDIR"
	! grep -q ioeventfd <<<"${GUEST_ARGV[*]}" || false # QEMU's default
	rm -f "$LOG"
	st=0
	# shellcheck disable=SC2086
	BHRR_VERBOSE=1 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || st=$?
	[ "$st" -eq "$GUEST_PASS" ]
	kicks=$(sed -n "s/.* \([0-9]*\) ioeventfd kicks run in the guest's write.*/\1/p" "$BATS_TEST_TMPDIR/rec.err")
	note "QEMU $1 virtio: $kicks kicks ran in the guest's notify write"
	[ "$kicks" -ge 1 ]
	! grep -q 'warning: .*ioeventfd' "$BATS_TEST_TMPDIR/rec.err" || false
	for i in 1 2 3 4 5; do
		replay_config "$1" virtio
		[ "$REP_STATUS" -eq "$GUEST_PASS" ] || { echo "$output"; false; }
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		! grep -q divergence <<<"$output" || false
	done
}

@test "QEMU 7.2: virtio with its default ioeventfd replays identically 5/5, each kick run in the guest's write" {
	ioeventfd 7.2
}

@test "QEMU 10.0: virtio with its default ioeventfd replays identically 5/5, each kick run in the guest's write" {
	ioeventfd 10.0
}

# drive_if_virtio VERSION: the virtio guest with its disk spelled -drive if=virtio
# (QEMU makes it a transitional virtio-blk-pci, ioeventfd on, whose legacy
# interface the guest drives), recorded once and replayed 3 times from the
# log's own command line, output identical; its notify writes ran the kicks.
drive_if_virtio() {
	local st kicks i args=()
	use_qemu "$1"
	guest_argv virtio "$BATS_TEST_TMPDIR"
	for ((i = 0; i < ${#GUEST_ARGV[@]}; i++)); do
		case "${GUEST_ARGV[i]}" in
		-device) [[ "${GUEST_ARGV[i + 1]}" == virtio-blk-pci,* ]] && { i=$((i + 1)); continue; } ;;
		id=d0,file=*) GUEST_ARGV[i]=${GUEST_ARGV[i]#id=d0,}; GUEST_ARGV[i]=${GUEST_ARGV[i]/if=none/if=virtio} ;;
		esac
		args+=("${GUEST_ARGV[i]}")
	done
	grep -q 'if=virtio' <<<"${args[*]}" && ! grep -q 'virtio-blk-pci' <<<"${args[*]}"
	rm -f "$LOG"
	st=0
	# shellcheck disable=SC2086
	BHRR_VERBOSE=1 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${args[@]}" \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || st=$?
	[ "$st" -eq "$GUEST_PASS" ] || { cat "$BATS_TEST_TMPDIR/rec.err"; false; }
	kicks=$(sed -n "s/.* \([0-9]*\) ioeventfd kicks run in the guest's write.*/\1/p" "$BATS_TEST_TMPDIR/rec.err")
	note "QEMU $1 -drive if=virtio: $kicks kicks ran in the guest's notify write"
	[ "$kicks" -ge 1 ]
	for i in 1 2 3; do
		guest_argv virtio "$BATS_TEST_TMPDIR" # fresh disks at the recorded paths
		st=0
		timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" \
			>"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
		echo "QEMU $1 -drive if=virtio replay $i: status $st"
		[ "$st" -eq "$GUEST_PASS" ] || { cat "$BATS_TEST_TMPDIR/rep.err"; false; }
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		! grep -q divergence "$BATS_TEST_TMPDIR/rep.err" || false
	done
}

@test "QEMU 7.2: a virtio disk spelled -drive if=virtio replays identically 3/3" {
	drive_if_virtio 7.2
}

@test "QEMU 10.0: a virtio disk spelled -drive if=virtio replays identically 3/3" {
	drive_if_virtio 10.0
}

# flaky_verdicts VERSION: a failing recording replays failing 10/10, a passing one passing.
# The flaky configuration's rate stays inside [0.3, 0.7] (40-guest.bats), so 40
# records lack the verdict wanted with probability at most 0.7^40 = 6e-7.
flaky_verdicts() {
	use_qemu "$1"
	for want in "$GUEST_FLAKY" "$GUEST_PASS"; do
		got=
		for _ in $(seq 1 40); do
			REC_STATUS=$GUEST_PASS
			record_config "$1" flaky
			[ "${REC_STATUS}" -eq "$want" ] && { got=1; break; }
		done
		[ -n "$got" ]
		for _ in $(seq 1 10); do
			replay_config "$1" flaky
			echo "QEMU $1: recorded $want, replayed $REP_STATUS"
			[ "$REP_STATUS" -eq "$want" ]
			cmp -s "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		done
	done
}

@test "QEMU 7.2: a failing flaky run replays failing 10/10, a passing one passing 10/10" {
	flaky_verdicts 7.2
}

@test "QEMU 10.0: a failing flaky run replays failing 10/10, a passing one passing 10/10" {
	flaky_verdicts 10.0
}

# every configuration, replayed 3 times with the vCPU made to park for every
# action (BHRR_TEST_PARK: what arrived is seen only after one wait, so the
# park path runs whatever the host's timing), and with each completion held
# back 3 ms as well (real late arrivals; how many depends on the host, so only
# the output is asserted there)
delayed_replays() {
	local v=$1 config parks delay want
	for config in $GUEST_CONFIGS; do
		REC_STATUS=0
		record_config "$v" "$config"
		for delay in 0 3000 3000; do
			BHRR_TEST_PARK=1 BHRR_TEST_DELAY_US=$delay replay_config "$v" "$config"
			parks=$(sed -n 's/.*; \([0-9]*\) parks).*/\1/p' <<<"$output")
			echo "QEMU $v $config, delay $delay us: status $REP_STATUS, $parks parks"
			grep -h 'divergence' "$BATS_TEST_TMPDIR/rep.err" || true
			cmp -s "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
			[ "$REP_STATUS" -eq "${REC_STATUS:-0}" ]
			! grep -q divergence <<<"$output" || false
			# one park per completion at least: every command completes once
			want=64
			[ "$config" != flaky ] || want=32
			[ "$parks" -ge "$want" ]
		done
	done
}

@test "QEMU 7.2: a replay that parks for every action, and one with completions held back, still match" {
	delayed_replays 7.2
}

@test "QEMU 10.0: a replay that parks for every action, and one with completions held back, still match" {
	delayed_replays 10.0
}

# completion_order FILE: the guest's command ids in the order it saw them complete
completion_order() {
	grep -o 'cmd=[0-9]*' "$1" | tr '\n' ' '
}

# ordering VERSION: virtio-burst without -icount, recorded once, replayed 10 times
ordering() {
	local want got
	use_qemu "$1"
	guest_argv virtio-burst "$BATS_TEST_TMPDIR"
	# drop "-icount" and its value
	local argv=() skip=0 a
	for a in "${GUEST_ARGV[@]}"; do
		if [ "$a" = -icount ]; then skip=1; continue; fi
		if [ "$skip" = 1 ]; then skip=0; continue; fi
		argv+=("$a")
	done
	# shellcheck disable=SC2086
	rm -f "$LOG"
	run "$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}"
	[ "$status" -eq "$GUEST_PASS" ]
	[[ "$output" == *"-icount"* ]] # the warning names what to add
	want=$(completion_order <(printf '%s\n' "$output"))
	[ "$(wc -w <<<"$want")" -eq 32 ]
	"$BHRR" dump "$LOG" | grep -q '^# icount mode none'
	for i in $(seq 1 10); do
		guest_argv virtio-burst "$BATS_TEST_TMPDIR"
		# shellcheck disable=SC2086
		st=0
		timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW \
			"${argv[@]}" >"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
		got=$(completion_order "$BATS_TEST_TMPDIR/rep.out")
		echo "QEMU $1 ordering replay $i (status $st): $got"
		[ "$st" -eq "$GUEST_PASS" ]
		[ "$got" = "$want" ]
		! grep -q divergence "$BATS_TEST_TMPDIR/rep.err" || false
		# up front and at the end: the order is forced, the timing is not
		grep -q 'ordering-mode log .*forces the order in which BHs and completions reach the guest, not when' "$BATS_TEST_TMPDIR/rep.err"
		grep -q "the guest's output may still differ" "$BATS_TEST_TMPDIR/rep.err"
	done
}

@test "QEMU 7.2 ordering mode (no -icount): the guest sees completions in the recorded order 10/10" {
	ordering 7.2
}

@test "QEMU 10.0 ordering mode (no -icount): the guest sees completions in the recorded order 10/10" {
	ordering 10.0
}

@test "replay refuses a log recorded by another QEMU build, naming both" {
	record_config 7.2 virtio
	use_qemu 10.0
	guest_argv virtio "$BATS_TEST_TMPDIR"
	# shellcheck disable=SC2086
	run "$BHRR" replay "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}"
	[ "$status" -eq 2 ]
	[[ "$output" == *"was recorded with QEMU build d9541fd67c4ea37f9ca7fca0f5096f32b3b7e7e0"* ]]
	[[ "$output" == *"is build 0fbbd5ca8d2d0a32532049e20739f3e0d521c5ed; refusing"* ]]
}

@test "SIGTERM during a replay ends it within 3 s" {
	use_qemu 7.2
	guest_argv virtio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=2000}")
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
	guest_argv virtio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=2000}")
	BHRR_TEST_PARK=1 BHRR_TEST_DELAY_US=20000 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 &
	signal_and_time TERM $! "$BATS_TEST_TMPDIR/rep.bhlog"
	[ "$EXIT_MS" -lt 3000 ]
	run "$BHRR" verify "$BATS_TEST_TMPDIR/rep.bhlog"
	[ "$status" -eq 0 ]
}

TOOL="$BHRR_BUILDDIR/tests/helper/bhrr-test-tool"

# tampered VERSION POLICY: one completion's request changed in the log; the
# replay names that event within the watchdog bound, and stops or runs free
tampered() {
	local seq req ic t0 ms
	record_config "$1" ide-pio
	seq=$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind=="io_complete" and .icount_exact) | .seq' | sed -n 20p)
	req=$("$BHRR" dump --json "$LOG" | jq -r "select(.seq==$seq) | .req")
	ic=$("$BHRR" dump --json "$LOG" | jq -r "select(.seq==$seq) | .icount")
	"$TOOL" tamper "$LOG" "$BATS_TEST_TMPDIR/bad.bhlog" "$seq" req 1000
	LOG="$BATS_TEST_TMPDIR/bad.bhlog"
	t0=$(date +%s%N)
	BHRR_WATCHDOG_MS=2000 replay_config "$1" ide-pio "--on-diverge=$2"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	echo "$output"
	echo "QEMU $1, $2: status $REP_STATUS after $ms ms"
	[ "$REP_STATUS" -eq 4 ]
	# "(at an I/O access)": the record landed it at the guest's status poll (io_land.h)
	[[ "$output" == *"divergence at recorded event #$seq: expected io_complete of request $((req + 1000)) at icount $ic"*"; it did not arrive within 2000 ms"* ]]
	[ "$ms" -lt 8000 ]
	"$BHRR" dump --json "$BATS_TEST_TMPDIR/rep.bhlog" | jq -s -e "map(select(.kind==\"diverge\" and .index==$seq)) | length == 1"
	if [ "$2" = stop ]; then
		[[ "$output" == *"stopping QEMU (BHRR_ON_DIVERGE=stop"* ]]
		! grep -q '^digest=' "$BATS_TEST_TMPDIR/rep.out" || false
	else
		[[ "$output" == *"(divergence; "*"running free"* ]]
		grep -q '^digest=' "$BATS_TEST_TMPDIR/rep.out"
		[[ "$output" == *"QEMU exited with $GUEST_PASS"* ]]
	fi
}

@test "QEMU 7.2: a tampered completion is named as the divergence, then QEMU stops (--on-diverge=stop)" {
	tampered 7.2 stop
}

@test "QEMU 7.2: a tampered completion is named as the divergence, then the run goes on free (--on-diverge=continue)" {
	tampered 7.2 continue
}

@test "QEMU 10.0: a tampered completion is named as the divergence under both policies" {
	tampered 10.0 stop
	tampered 10.0 continue
}

@test "a warp moved one instruction earlier is named as the divergence" {
	local seq ic
	# the idle configuration sleeps through 8 PIT ticks with nothing in
	# flight before its I/O: only the timer can wake it, so QEMU warps at
	# least 8 times in every run, whatever the host does
	record_config 7.2 idle
	[ "$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind=="warp") | .seq' | wc -l)" -ge 8 ]
	# the third warp that lies more than one instruction after the event
	# before it: moved one earlier, the log stays in icount order (bhrr
	# replay refuses a log whose icounts go back before QEMU starts)
	seq=$("$BHRR" dump --json "$LOG" | jq -s -r '[.[] | select(.icount_exact and
		(.kind == "warp" or .kind == "io_complete" or .kind == "bh_run"))] as $a |
		[range(1; $a | length) | select($a[.].kind == "warp" and $a[.].icount - 1 > $a[. - 1].icount) |
		$a[.].seq] | .[2]')
	[ "$seq" != null ]
	ic=$("$BHRR" dump --json "$LOG" | jq -r "select(.seq==$seq) | .icount")
	"$TOOL" tamper "$LOG" "$BATS_TEST_TMPDIR/bad.bhlog" "$seq" icount -1
	LOG="$BATS_TEST_TMPDIR/bad.bhlog"
	replay_config 7.2 idle
	echo "$output"
	[ "$REP_STATUS" -eq 4 ]
	# named when the guest halts past it, or when the executor finds it there
	[[ "$output" == *"divergence at recorded event #$seq: expected warp of "*" ns at icount $((ic - 1)); the guest "* ]]
	grep -Eq "the guest (ran on to|is already at) icount $ic" <<<"$output"
}

@test "BHRR_ON_DIVERGE and --on-diverge refuse values other than stop and continue" {
	record_config 7.2 ide-pio
	run "$BHRR" replay "$LOG" --on-diverge=maybe
	[ "$status" -eq 2 ]
	[[ "$output" == *"--on-diverge=maybe: expected --on-diverge=stop or --on-diverge=continue"* ]]
	guest_argv ide-pio "$BATS_TEST_TMPDIR"
	BHRR_ON_DIVERGE=maybe replay_config 7.2 ide-pio
	[[ "$output" == *"BHRR_ON_DIVERGE=maybe: expected 'stop' or 'continue'; not replaying"* ]]
}

# qmp_quit_parked VERSION: QMP quit while the vCPU waits for a delayed completion
qmp_quit_parked() {
	local port
	use_qemu "$1"
	guest_argv virtio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=1000}")
	# shellcheck disable=SC2086
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >/dev/null 2>&1 || true
	guest_argv virtio "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/n=64/n=1000}")
	port=$((20000 + RANDOM % 20000))
	# shellcheck disable=SC2086
	BHRR_TEST_PARK=1 BHRR_TEST_DELAY_US=20000 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW \
		"${GUEST_ARGV[@]}" -qmp "tcp:127.0.0.1:$port,server=on,wait=off" \
		>/dev/null 2>"$BATS_TEST_TMPDIR/rep.err" &
	qmp_quit_and_time "$port" $! "$BATS_TEST_TMPDIR/rep.bhlog"
	cat "$BATS_TEST_TMPDIR/rep.err"
	echo "QEMU $1"
	[ "$EXIT_MS" -lt 3000 ]
	# it was parked: BHRR_TEST_PARK parks for every action
	grep -q 'recorded control ended.*; [1-9][0-9]* parks' "$BATS_TEST_TMPDIR/rep.err"
	run "$BHRR" verify "$BATS_TEST_TMPDIR/rep.bhlog"
	[ "$status" -eq 0 ]
}

@test "QMP quit during a parked replay ends QEMU 7.2 within 3 s" {
	qmp_quit_parked 7.2
}

@test "QMP quit during a parked replay ends QEMU 10.0 within 3 s" {
	qmp_quit_parked 10.0
}
