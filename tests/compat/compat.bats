#!/usr/bin/env bats
# The compatibility matrix (issue 16; make check-compat): the bare-metal
# record/replay acceptance on a QEMU other than the two the main suites run,
# given as BHRR_COMPAT_QEMU - a host-side wrapper made by
# tests/compat/chroot.sh that runs another Debian release's QEMU in its
# chroot.  BHRR_COMPAT_NAME names it in the output.
#
# Every configuration of tests/guest/guest.sh is recorded once and replayed
# 5 times; each replay's output must equal the record's, byte for byte.
# None of these builds is on bhrr's tested list: each record goes through
# its self-check (bhrr record runs it first and says it passed).  Nothing
# is forced: the bhrr command learns the build-id through the wrapper (a
# script) from the shim inside it, so the replays check the log's build-id
# and the disk images as on the host.

load ../shell/helper

setup() {
	: "${BHRR_COMPAT_QEMU:?make check-compat sets it (tests/compat/chroot.sh)}"
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/run.bhlog"
}

@test "the self-check passes" {
	run env BHRR_MODE=check BHRR_CHECK_SELF=1 LD_PRELOAD="$SHIM" "$BHRR_COMPAT_QEMU" -version
	echo "$output"
	grep -q '^bhrr: check: self-check passed (6 checks)$' <<<"$output"
	# the version it reports, for the matrix
	grep -m1 '^bhrr: check: QEMU ' <<<"$output" >&3
}

@test "every bare-metal configuration, recorded once, replays identically 5 times" {
	for config in $GUEST_CONFIGS; do
		guest_argv "$config" "$BATS_TEST_TMPDIR"
		rm -f "$LOG"
		st=0
		"$BHRR" record -o "$LOG" -- "$BHRR_COMPAT_QEMU" "${GUEST_ARGV[@]}" \
			>"$BATS_TEST_TMPDIR/rec.out" 2>"$BATS_TEST_TMPDIR/rec.err" || st=$?
		cat "$BATS_TEST_TMPDIR/rec.err"
		[ "$st" -eq "$GUEST_PASS" ] || [ "$st" -eq "$GUEST_FLAKY" ]
		grep -qF "its self-check passed" "$BATS_TEST_TMPDIR/rec.err"
		"$BHRR" verify "$LOG" | grep -q 'complete$'
		for k in 1 2 3 4 5; do
			guest_argv "$config" "$BATS_TEST_TMPDIR"
			st=0
			"$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$BHRR_COMPAT_QEMU" \
				"${GUEST_ARGV[@]}" >"$BATS_TEST_TMPDIR/rep.out" 2>"$BATS_TEST_TMPDIR/rep.err" || st=$?
			cmp -s "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out" ||
				{ echo "$config: replay $k differs"; cat "$BATS_TEST_TMPDIR/rep.err"; false; }
			grep -q "after \([0-9]*\) of \1 recorded events (end of the log" "$BATS_TEST_TMPDIR/rep.err" ||
				{ echo "$config: replay $k did not follow every event"; cat "$BATS_TEST_TMPDIR/rep.err"; false; }
		done
		echo "# $config: recorded, replayed 5/5 identically" >&3
	done
}
