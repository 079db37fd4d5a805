#!/usr/bin/env bats
# Monitor commands (issue 14, point 5) on the real QEMU 7.2 and 10.0: a QMP
# client's cont (after -S), stop, system_reset and cont again, send-key and
# sendkey, and system_powerdown are recorded at exact icounts and replayed
# with no client at all; a client attached to a replay has its commands
# that change the guest refused, its queries answered.
#
# The guest (monitor configuration, main.c con= warm=1) boots, then polls
# COM1 for 24 bytes, keeping its poll count in RAM that a reset leaves
# alone; booted again by the reset, it prints how many polls the first boot
# made: the icount of the reset, which host timing decides in a free run.
# The harness (tests/helper/qmp-harness.py) sends each command when the
# guest's output says it polls, never after a delay.

load helper

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/rec.bhlog"
	SOCK="$BATS_TEST_TMPDIR/qmp.sock"
	HARNESS="$BHRR_SRCDIR/tests/helper/qmp-harness.py"
}

# record_with_harness [HARNESS OPTIONS]: record the monitor guest (or with
# --keys, the keyboard guest), driven by the harness; output in rec.out,
# status in STATUS.
record_with_harness() {
	local d=$BATS_TEST_TMPDIR
	rm -f "$d/console.in" "$SOCK" "$LOG"
	mkfifo "$d/console.in"
	if [ "$1" = --powerdown ]; then
		guest_argv powerdown "$d"
	elif [ "$1" = --keys ]; then
		guest_argv keyboard "$d"
	else
		guest_argv monitor "$d"
	fi
	STATUS=0
	# shellcheck disable=SC2086
	timeout 120 python3 "$HARNESS" "$@" "$SOCK" "$d/console.in" "$d/rec.out" \
		"$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" -S \
		-qmp "unix:$SOCK,server=on,wait=off" 2>"$d/rec.err" || STATUS=$?
	cat "$d/rec.err"
	# the reset came while the first boot polled: forced by the harness
	[ "$1" = --keys ] || [ "$1" = --powerdown ] || grep "boot: warm, the boot before was reset after" "$d/rec.out"
}

# replay_alone N: replay $LOG N times with no client and no console input;
# each replay's output and status are the recording's
replay_alone() {
	local d=$BATS_TEST_TMPDIR
	rm -f "$d/console.in"
	: >"$d/console.in"
	for i in $(seq "$1"); do
		rm -f "$SOCK"
		local st=0
		# shellcheck disable=SC2086
		timeout 60 "$BHRR" replay "$LOG" -o "$d/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW \
			"${GUEST_ARGV[@]}" -S -qmp "unix:$SOCK,server=on,wait=off" \
			>"$d/rep.out" 2>"$d/rep.err" || st=$?
		cat "$d/rep.err"
		[ "$st" -eq "$STATUS" ]
		cmp "$d/rec.out" "$d/rep.out"
		! grep -q divergence "$d/rep.err" || false
		"$BHRR" diff "$LOG" "$d/rep.bhlog"
		echo "replay $i with no client: identical"
	done
}

# the monitor events of $LOG, as "icount request" lines
monitor_events() {
	"$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "monitor") | "\(.icount) \(.request)"'
}

monitor_stop_reset_cont() {
	use_qemu "$1"
	record_with_harness
	[ "$STATUS" -eq "$GUEST_PASS" ]
	monitor_events | tee "$BATS_TEST_TMPDIR/mon.txt"
	# cont at 0 (-S), then stop, system_reset, cont at one icount: the stopped VM's
	local -a ic cmd
	mapfile -t ic < <(cut -d' ' -f1 "$BATS_TEST_TMPDIR/mon.txt")
	mapfile -t cmd < <(cut -d' ' -f2- "$BATS_TEST_TMPDIR/mon.txt" | jq -r .execute)
	[ "${cmd[*]}" = "cont stop system_reset cont" ]
	[ "${ic[0]}" -eq 0 ] && [ "${ic[1]}" -gt 0 ]
	[ "${ic[1]}" -eq "${ic[2]}" ] && [ "${ic[2]}" -eq "${ic[3]}" ]
	# queries were not recorded
	! monitor_events | grep -q query || false
	replay_alone 3
}

@test "QEMU 7.2: QMP cont (-S), stop, system_reset, cont: recorded at their icounts, replayed with no client (3/3)" {
	monitor_stop_reset_cont 7.2
}

@test "QEMU 10.0: QMP cont (-S), stop, system_reset, cont: recorded at their icounts, replayed with no client (3/3)" {
	monitor_stop_reset_cont 10.0
}

# a system_reset of the running guest: bhrr stops the vCPU where it is, and
# the guest boots again from that icount in the record and in each replay;
# then a client attached to a replay (its socket waits for it) has cont,
# stop and system_reset refused, and the replay is the same.  It sends them
# as soon as it connects, before the guest runs, while the replay still has
# every recorded event before it (dozens of main-loop turns of I/O): forced.
monitor_reset_running() {
	use_qemu "$1"
	record_with_harness --reset-running
	[ "$STATUS" -eq "$GUEST_PASS" ]
	[ "$(monitor_events | cut -d' ' -f2- | jq -r .execute | tr '\n' ' ')" = "cont system_reset " ]
	replay_alone 2
	local d=$BATS_TEST_TMPDIR st=0
	rm -f "$SOCK"
	# shellcheck disable=SC2086
	timeout 120 python3 "$HARNESS" --live-replay "$SOCK" "$d/console.in" "$d/live.out" \
		"$BHRR" replay "$LOG" -o "$d/rep.bhlog" -- "$QEMU_BIN" $QEMU_FW \
		"${GUEST_ARGV[@]}" -S -qmp "unix:$SOCK,server=on,wait=on" 2>"$d/live.err" || st=$?
	cat "$d/live.err"
	[ "$st" -eq "$STATUS" ]
	cmp "$d/rec.out" "$d/live.out"
	grep -q "replay: live monitor command 'cont' ignored" "$d/live.err"
	"$BHRR" diff "$LOG" "$d/rep.bhlog"
}

@test "QEMU 7.2: a system_reset of the running guest replays at its icount; a client attached to the replay is refused" {
	monitor_reset_running 7.2
}

@test "QEMU 10.0: a system_reset of the running guest replays at its icount; a client attached to the replay is refused" {
	monitor_reset_running 10.0
}

# a QMP send-key and an HMP sendkey (through QMP's human-monitor-command)
# while the guest polls the i8042: the scancodes reach it at the recorded
# icounts, so the polls it counted replay too
monitor_keys() {
	use_qemu "$1"
	record_with_harness --keys
	[ "$STATUS" -eq "$GUEST_PASS" ]
	grep '^kbd: byte' "$BATS_TEST_TMPDIR/rec.out"
	[ "$(grep -o '^kbd: byte [0-9] = [0-9a-f]*' "$BATS_TEST_TMPDIR/rec.out" | cut -d' ' -f5 | tr '\n' ' ')" = "1e 9e 30 b0 " ]
	[ "$(monitor_events | cut -d' ' -f2- | jq -r .execute | tr '\n' ' ')" = "cont send-key human-monitor-command " ]
	replay_alone 2
}

@test "QEMU 7.2: QMP send-key and HMP sendkey reach the guest at their recorded icounts, with no client in the replay (2/2)" {
	monitor_keys 7.2
}

@test "QEMU 10.0: QMP send-key and HMP sendkey reach the guest at their recorded icounts, with no client in the replay (2/2)" {
	monitor_keys 10.0
}

# a QMP system_powerdown while the guest polls PIIX4's power-button status:
# the press reaches it at the recorded icount, so the polls it counted
# replay too, with no client
monitor_powerdown() {
	use_qemu "$1"
	record_with_harness --powerdown
	[ "$STATUS" -eq "$GUEST_PASS" ]
	grep '^pwr: power button after [0-9]* polls' "$BATS_TEST_TMPDIR/rec.out"
	[ "$(monitor_events | cut -d' ' -f2- | jq -r .execute | tr '\n' ' ')" = "cont system_powerdown " ]
	replay_alone 2
}

@test "QEMU 7.2: a QMP system_powerdown presses the ACPI button at its recorded icount, with no client in the replay (2/2)" {
	monitor_powerdown 7.2
}

@test "QEMU 10.0: a QMP system_powerdown presses the ACPI button at its recorded icount, with no client in the replay (2/2)" {
	monitor_powerdown 10.0
}
