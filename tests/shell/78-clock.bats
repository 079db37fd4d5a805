#!/usr/bin/env bats
# Host clocks (issue 14, point 3) on the real QEMU 7.2 and 10.0: with
# -rtc clock=vm and a base that follows the host (base=utc, QEMU's default,
# or base=localtime), the host's clock reaches the guest once, as its RTC's
# start.  A record logs it (host_clock), bhrr replay gives the replay that
# start, and a replay whose RTC starts elsewhere is named as a divergence
# before the guest runs.
#
# The guest (clock configuration, main.c rtc=1) prints its CMOS clock at
# boot.  Recorded with --as-is, so that bhrr record does not fix the base.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/rec.bhlog"
	guest_argv clock "$BATS_TEST_TMPDIR"
}

# clock_replays VERSION RTC TZ_RECORD: record with -rtc RTC under TZ_RECORD,
# replay twice under another TZ; the guest's RTC is the recorded start
clock_replays() {
	use_qemu "$1"
	local d=$BATS_TEST_TMPDIR argv=("${GUEST_ARGV[@]/clock=vm,base=2020-01-01T00:00:00/$2}")
	local st=0
	# shellcheck disable=SC2086
	TZ=$3 "$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}" \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	grep -q "^rtc: " "$d/rec.out"
	# the log has the start the guest read, to the second
	local start
	start=$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "host_clock" and .what == "rtc_start") | .value')
	echo "recorded RTC start: $start"
	[ "rtc: ${start/T/ }" = "$(grep '^rtc: ' "$d/rec.out")" ]
	for i in 1 2; do
		st=0
		TZ=UTC0 "$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
		cat "$d/rep.err"
		[ "$st" -eq "$GUEST_PASS" ]
		grep -q "replaying with -rtc base=$start" "$d/rep.err"
		cmp "$d/rec.out" "$d/rep.out"
		"$BHRR" diff "$LOG" "$d/rep.bhlog"
	done
	# given a command line whose RTC starts elsewhere: named before the guest runs
	st=0
	# shellcheck disable=SC2086
	"$BHRR" replay "$LOG" -o "$d/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" \
		>"$d/other.out" 2>"$d/other.err" || st=$?
	cat "$d/other.err"
	[ "$st" -eq 4 ]
	grep -qF "expected the RTC's start; the guest's RTC starts at 2020-01-01T00:00:00, the recording's at $start" \
		"$d/other.err"
}

@test "QEMU 7.2: -rtc clock=vm (base=utc): the RTC's start is recorded, replayed, and a changed one named" {
	clock_replays 7.2 clock=vm UTC0
}

@test "QEMU 10.0: -rtc clock=vm (base=utc): the RTC's start is recorded, replayed, and a changed one named" {
	clock_replays 10.0 clock=vm UTC0
}

@test "QEMU 7.2: -rtc clock=vm,base=localtime, recorded nine hours east, replays in UTC" {
	clock_replays 7.2 clock=vm,base=localtime JST-9
}

# An RTC on the host's clock, recorded --as-is, is not recorded: the replay
# says so before the guest runs (what the doctor names, it names too).
@test "QEMU 7.2: -rtc clock=host recorded --as-is: the replay warns that the RTC follows the host" {
	use_qemu 7.2
	local d=$BATS_TEST_TMPDIR argv=("${GUEST_ARGV[@]/clock=vm,base=2020-01-01T00:00:00/clock=host}")
	local st=0
	# shellcheck disable=SC2086
	"$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}" \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	grep -q "warning: the guest RTC follows the host clock" "$d/rec.err"
	st=0
	"$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
	cat "$d/rep.err"
	echo "replay: status $st"
	grep -q "^bhrr: replay: warning: the guest RTC follows the host clock; this replay may differ there" "$d/rep.err"
	# a log recorded without --as-is gets clock=vm: its replay warns of nothing
	st=0
	# shellcheck disable=SC2086
	"$BHRR" record --force -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}" \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	[ "$st" -eq "$GUEST_PASS" ]
	st=0
	"$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
	cat "$d/rep.err"
	[ "$st" -eq "$GUEST_PASS" ]
	! grep -q "warning" "$d/rep.err" || false
}
