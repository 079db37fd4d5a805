#!/usr/bin/env bats
# Host clocks (issue 14, point 3) on the real QEMU 7.2 and 10.0.  With
# -rtc clock=vm and a base that follows the host (base=utc, QEMU's default,
# or base=localtime), the host's clock reaches the guest once, as its RTC's
# start.  A record logs it (host_clock), bhrr replay gives the replay that
# start, and a replay whose RTC starts elsewhere is named as a divergence
# before the guest runs.  With the RTC on the host's clock (clock=host or
# clock=rt) every read of it and every firing of its timers is recorded.
#
# The guest (clock configuration, main.c rtc=1) prints its CMOS clock at
# boot; clock-watch (rtc=2) then polls it through two ticks.  Recorded with
# --as-is, so that bhrr record does not fix the clock or the base.

load helper

TOOL="$BHRR_BUILDDIR/tests/helper/bhrr-test-tool"

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

# An RTC on the host's clock (clock=host, QEMU's default, or clock=rt),
# recorded --as-is: each read of the host's clock made for the guest and
# each firing of the RTC's timers is recorded and replayed (gate_clock.h).
# The guest (clock-watch) polls the RTC through two ticks of its seconds:
# the polls each tick took and the flags it saw are host timing in a free
# run, and its date is the host's.  Replays run later than the record, so
# the host's clock has moved on: they print the recorded lines all the same.
host_clock_replays() {
	use_qemu "$1"
	guest_argv clock-watch "$BATS_TEST_TMPDIR"
	local d=$BATS_TEST_TMPDIR argv=("${GUEST_ARGV[@]/clock=vm,base=2020-01-01T00:00:00/$2}")
	local st=0
	# shellcheck disable=SC2086
	"$BHRR" record --as-is -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}" \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	grep '^rtc: ' "$d/rec.out"
	grep -q '^rtc: tick 2 after ' "$d/rec.out"
	# covered in exact mode: the doctor has nothing to say about it
	! grep -q 'warning' "$d/rec.err" || false
	"$BHRR" dump --json "$LOG" >"$d/rec.json"
	local reads timers
	reads=$(jq -s '[.[] | select(.kind == "host_clock" and .what != "rtc_start")] | length' "$d/rec.json")
	timers=$(jq -s '[.[] | select(.kind == "host_timer")] | length' "$d/rec.json")
	echo "host clock reads: $reads, timer firings: $timers"
	# whatever the host's speed: the boot's date (6 registers) and each tick's
	# polls (3 registers, at least one poll a tick) read the host's clock, and
	# the guest waits last for the flag only the update timer sets
	grep -q '^rtc: update flag after ' "$d/rec.out"
	[ "$reads" -gt 10 ]
	[ "$timers" -ge 1 ]
	for i in 1 2; do
		st=0
		"$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
		cat "$d/rep.err"
		[ "$st" -eq "$GUEST_PASS" ]
		! grep -q 'warning\|replaying with -rtc' "$d/rep.err" || false
		cmp "$d/rec.out" "$d/rep.out"
		"$BHRR" diff "$LOG" "$d/rep.bhlog"
		[ "$(jq -s '[.[] | select(.kind == "host_clock" and .what != "rtc_start")] | length' \
			<("$BHRR" dump --json "$d/rep.bhlog"))" -eq "$reads" ]
	done
}

@test "QEMU 7.2: -rtc clock=host recorded --as-is: its reads and timers replay, byte-identical" {
	host_clock_replays 7.2 clock=host
}

@test "QEMU 10.0: -rtc clock=host recorded --as-is: its reads and timers replay, byte-identical" {
	host_clock_replays 10.0 clock=host
}

@test "QEMU 10.0: -rtc clock=rt recorded --as-is: its reads and timers replay, byte-identical" {
	host_clock_replays 10.0 clock=rt
}

@test "QEMU 7.2: a host clock read moved one instruction is named as the divergence" {
	host_clock_replays 7.2 clock=host
	local d=$BATS_TEST_TMPDIR seq ic
	# the 500th read the guest's polls made, in a device access: an exact icount
	read -r seq ic < <(jq -r 'select(.kind == "host_clock" and .what == "host" and
		.icount_exact) | "\(.seq) \(.icount)"' "$d/rec.json" | sed -n 500p)
	echo "moving read #$seq at icount $ic"
	"$TOOL" tamper "$LOG" "$d/moved.bhlog" "$seq" icount 1
	local st=0
	"$BHRR" replay "$d/moved.bhlog" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
	cat "$d/rep.err"
	[ "$st" -eq 4 ]
	grep -qF "divergence at recorded event #$seq: expected a read of the host clock at icount $((ic + 1)); the guest read the host clock at icount $ic" "$d/rep.err"
}
