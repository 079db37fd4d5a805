#!/usr/bin/env bats
# -smp N in exact mode (issue 13): the bare-metal guest's CPUs race on
# shared memory while the BSP completes I/O (tests/guest/smp.c), so where
# QEMU's round robin switches vCPUs shows in its "race:" line; a record
# logs the vCPUs' turns and a replay makes them again (shim/vcpu_sched.h).
# QEMU 10.0 only: 7.2 has no per-vCPU budget, and bhrr refuses it there.

load helper

TOOL="$BHRR_BUILDDIR/tests/helper/bhrr-test-tool"

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# race_argv CONFIG SMP: GUEST_ARGV for CONFIG (smp-race, smp-race-virtio) with SMP CPUs
race_argv() {
	guest_argv "$1" "$BATS_TEST_TMPDIR"
	GUEST_ARGV=("${GUEST_ARGV[@]/smp=2/smp=$2}")
	for i in "${!GUEST_ARGV[@]}"; do
		[ "${GUEST_ARGV[$i]}" != -smp ] || GUEST_ARGV[i + 1]=$2
	done
}

# assert_race_run OUT SMP: the guest passed with SMP CPUs, and printed its race
assert_race_run() {
	grep -q "^race: cpus=$2 steps=[0-9]* counter=[0-9]* lost=[0-9]* switches=[0-9]* trace=" "$1"
	grep -q '^done: ' "$1"
	grep -q '^digest=' "$1"
	! grep -q FAIL "$1" || false
}

# The helper session that wrote the guest ran each configuration 10 times
# free on QEMU 7.2 and 10.0, at smp=2 and 4: 10 digests of 10 every time
# (tests/guest/README.md).  By 17-virt-boards.bats's argument, 10 runs give
# one digest with probability below 2e-5.
race_free_run() {
	race_argv "${RACE_CONFIG:-smp-race-virtio}" 2
	run "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}"
	[ "$status" -eq "$GUEST_PASS" ]
	echo "$output" >"$BATS_TEST_TMPDIR/free.out"
	assert_race_run "$BATS_TEST_TMPDIR/free.out" 2
	DIGEST=$(sed -n 's/^digest=//p' <<<"$output")
}

@test "free runs of the SMP race guest (virtio-blk) differ (two digests within 10 runs on QEMU 10.0)" {
	use_qemu 10.0
	differs_within 10 race_free_run
}

@test "free runs of the SMP race guest (IDE PIO) differ (two digests within 10 runs on QEMU 10.0)" {
	use_qemu 10.0
	RACE_CONFIG=smp-race differs_within 10 race_free_run
}

# race_replays CONFIG SMP: record once on QEMU 10.0, replay 5 times, each
# byte-identical and following the whole log (every logged turn made)
race_replays() {
	use_qemu 10.0
	race_argv "$1" "$2"
	rm -f "$LOG"
	status=0
	timeout 120 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" </dev/null \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || status=$?
	cat "$BATS_TEST_TMPDIR/rec.err"
	[ "$status" -eq "$GUEST_PASS" ]
	assert_race_run "$BATS_TEST_TMPDIR/rec.out" "$2"
	grep '^race:' "$BATS_TEST_TMPDIR/rec.out"
	# the turns are logged, every vCPU's, and the race needed more than one
	"$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "slice")] | group_by(.vcpu) | length' >"$BATS_TEST_TMPDIR/vcpus"
	[ "$(cat "$BATS_TEST_TMPDIR/vcpus")" -eq "$2" ]
	# and bhrr stat counts each vCPU's turns and instructions
	[ "$("$BHRR" stat "$LOG" | grep -cE '^  vcpu [0-9]+ +[1-9][0-9]* turns +[1-9][0-9]* instructions$')" -eq "$2" ]
	! grep -q "switches=0 " "$BATS_TEST_TMPDIR/rec.out" || false
	for k in 1 2 3 4 5; do
		race_argv "$1" "$2"
		status=0
		BHRR_WATCHDOG_MS=5000 timeout 120 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" \
			</dev/null >"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || status=$?
		echo "replay $k: status $status"
		[ "$status" -eq "$GUEST_PASS" ] || { cat "$BATS_TEST_TMPDIR/rep.err"; return 1; }
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		grep -qE 'after ([0-9]+) of \1 recorded events \(end of the log' "$BATS_TEST_TMPDIR/rep.err"
		# the replay's own log has the record's turns, one for one
		[ "$("$BHRR" dump "$LOG" | grep -c ' slice ')" -eq "$("$BHRR" dump "$BATS_TEST_TMPDIR/rep.bhlog" | grep -c ' slice ')" ]
	done
}

@test "-smp 2, virtio-blk: the race recorded once on QEMU 10.0 replays identically 5 times" {
	race_replays smp-race-virtio 2
}

@test "-smp 4, virtio-blk: the race recorded once on QEMU 10.0 replays identically 5 times" {
	race_replays smp-race-virtio 4
}

# IDE PIO: every sector its own completion, both channels' interrupts
# through the PIC, a 1 kHz PIT.  Before a turn that took an interrupt got
# a slice of its own, 15 of 100 of its records at -smp 2 did not replay.
@test "-smp 2, IDE PIO: the race recorded once on QEMU 10.0 replays identically 5 times" {
	race_replays smp-race 2
}

@test "-smp 4, IDE PIO: the race recorded once on QEMU 10.0 replays identically 5 times" {
	race_replays smp-race 4
}

@test "a -smp replay whose guest runs otherwise is stopped at a named divergence" {
	use_qemu 10.0
	race_argv smp-race-virtio 2
	run timeout 120 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}"
	[ "$status" -eq "$GUEST_PASS" ]
	# the same guest, told to start no AP: its BSP runs otherwise, its AP never
	race_argv smp-race-virtio 2
	GUEST_ARGV=("${GUEST_ARGV[@]/smp=2/smp=1}")
	run env BHRR_WATCHDOG_MS=2000 timeout 120 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" \
		-- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}"
	echo "$output"
	[ "$status" -eq 4 ]
	grep -qE "divergence at recorded event #[0-9]+: expected " <<<"$output"
}

@test "on QEMU 7.2, bhrr record refuses -smp 2 in exact mode before QEMU starts, and says why" {
	use_qemu 7.2
	race_argv smp-race 2
	run "$BHRR" record -o "$LOG" -- "$QEMU_BIN" "${GUEST_ARGV[@]}"
	[ "$status" -eq 2 ]
	[[ "$output" == *"QEMU 7.2 has no per-vCPU icount budget (icount_prepare_for_run)"*"refusing"* ]]
	[ ! -e "$LOG" ]
	# nothing ran: the guest's output would be here
	[[ "$output" != *"race:"* ]]
}
