#!/usr/bin/env bats
# Another guest architecture (issue 16): Debian 12's qemu-system-aarch64
# (QEMU 7.2, which bhrr was not tested on: its self-check decides) with the
# aarch64 bare-metal guest (tests/guest/aarch64/), whose free runs differ
# and whose record replays identically.  The hooks are host-side; nothing
# in bhrr knows the guest's architecture.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	QEMU_A64=/usr/bin/qemu-system-aarch64
	[ -x "$QEMU_A64" ] || { echo "no $QEMU_A64 (Debian package qemu-system-arm; scripts/setup-debian.sh)" >&2; return 1; }
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

# Each completion line carries its latency by the virtual counter, which
# -icount derives from when the completion arrived: 20 free runs gave 20
# different digests, twice, here.  Had the likeliest digest a mass m >= 0.3,
# at most one of 20 runs would hit it with probability 0.7^20 + 20 * 0.3 *
# 0.7^19 < 1%; so (at 99% confidence) m < 0.3, and 10 runs give one digest
# with probability below m^9 = 2e-5.
@test "aarch64: the guest passes, and free runs differ (two digests within 10 runs)" {
	seen=
	for _ in $(seq 1 10); do
		a64_argv "$BATS_TEST_TMPDIR"
		run "$QEMU_A64" "${GUEST_ARGV[@]}"
		[ "$status" -eq 0 ]
		grep -q '^done: cmds=32 ' <<<"$output"
		! grep -q 'FAIL' <<<"$output" || false
		[ "$(grep -c '^cmd=.* st=0 ' <<<"$output")" -eq 32 ]
		d=$(grep '^done:' <<<"$output" | sed 's/.*digest=//')
		[ -z "$seen" ] || [ "$d" = "$seen" ] || return 0
		seen=$d
	done
	echo "10 free runs gave one digest: $seen"
	false
}

@test "aarch64: recorded once (an untested build, through its self-check), replays identically 5 times" {
	a64_argv "$BATS_TEST_TMPDIR"
	"$BHRR" record -o "$LOG" -- "$QEMU_A64" "${GUEST_ARGV[@]}" </dev/null \
		>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || { cat "$BATS_TEST_TMPDIR/rec.err"; false; }
	cat "$BATS_TEST_TMPDIR/rec.err"
	grep -qF "its self-check passed" "$BATS_TEST_TMPDIR/rec.err"
	grep -q '^done: cmds=32 ' "$BATS_TEST_TMPDIR/rec.out"
	"$BHRR" verify "$LOG" | grep -q 'complete$'
	# every request has its completion, at an exact icount
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "io_complete" and .icount_exact)] | length')" -ge 32 ]
	for k in 1 2 3 4 5; do
		a64_argv "$BATS_TEST_TMPDIR"
		"$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" </dev/null >"$BATS_TEST_TMPDIR/rep.out" \
			2>"$BATS_TEST_TMPDIR/rep.err" || { cat "$BATS_TEST_TMPDIR/rep.err"; false; }
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out" || { echo "replay $k differs"; false; }
		grep -q "after \([0-9]*\) of \1 recorded events (end of the log" "$BATS_TEST_TMPDIR/rep.err" ||
			{ echo "replay $k did not follow every event"; cat "$BATS_TEST_TMPDIR/rep.err"; false; }
	done
}
