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
	"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/rec.out" 2>/dev/null || REC_STATUS=$?
}

# replay_config VERSION CONFIG: replay $LOG on fresh disks; sets REP_STATUS,
# the guest's output in rep.out and bhrr's messages in $output.
replay_config() {
	guest_argv "$2" "$BATS_TEST_TMPDIR"
	REP_STATUS=0
	# shellcheck disable=SC2086
	timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW \
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
			! grep -q divergence <<<"$output"
			! grep 'recorded control ended' <<<"$output" | grep -qv 'after \([0-9]*\) of \1 recorded'
		done
		echo "QEMU $v $config: $n replays identical"
	done
}

@test "every bundled guest replays byte-identically on QEMU 7.2 (3 replays each)" {
	assert_replays 7.2 3
}

@test "every bundled guest replays byte-identically on QEMU 10.0 (3 replays each)" {
	assert_replays 10.0 3
}

@test "a failing flaky run replays failing and a passing one passing, 5 times each" {
	use_qemu 7.2
	for want in "$GUEST_FLAKY" "$GUEST_PASS"; do
		got=
		for _ in $(seq 1 40); do
			REC_STATUS=$GUEST_PASS
			record_config 7.2 flaky
			[ "${REC_STATUS}" -eq "$want" ] && { got=1; break; }
		done
		[ -n "$got" ]
		for _ in 1 2 3 4 5; do
			replay_config 7.2 flaky
			echo "recorded $want, replayed $REP_STATUS"
			[ "$REP_STATUS" -eq "$want" ]
			cmp -s "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		done
	done
}

@test "replay parks for delayed completions and still matches (BHRR_TEST_DELAY_US)" {
	record_config 10.0 ahci-ncq
	for _ in 1 2 3; do
		BHRR_TEST_DELAY_US=3000 replay_config 10.0 ahci-ncq
		cmp -s "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
	done
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
	BHRR_TEST_DELAY_US=20000 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" "${GUEST_ARGV[@]}" >/dev/null 2>&1 &
	signal_and_time TERM $!
	[ "$EXIT_MS" -lt 3000 ]
	run "$BHRR" verify "$BATS_TEST_TMPDIR/rep.bhlog"
	[ "$status" -eq 0 ]
}
