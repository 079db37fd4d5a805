#!/usr/bin/env bats
# Console input (issue 14, point 2) on the real QEMU 7.2 and 10.0: bytes a
# chardev backend hands to the guest's 16550 are recorded with their icounts
# and replayed without the backend's input; live input during a replay is
# ignored, and said so; a monitor sharing the console keeps working live.
#
# The guest (console configuration, main.c con=) reads 24 bytes from COM1
# by polling, and prints for each how many polls it waited: that depends on
# when the host's main loop handed the byte over, so only a replay that
# delivers every byte at its recorded icount prints the same.

load helper

INPUT='hello, bhrr! 0123456789.'

setup() {
	# shellcheck source=tests/guest/guest.sh
	. "$BHRR_SRCDIR/tests/guest/guest.sh"
	LOG="$BATS_TEST_TMPDIR/rec.bhlog"
}

# run_console MODE OUT IN [EXTRA...]: the console guest under bhrr MODE (record
# or replay of $LOG) with IN as its console's input; output in OUT, bhrr's
# messages in OUT.err, the status in STATUS.
run_console() {
	local mode=$1 out=$2 in=$3
	shift 3
	guest_argv console "$BATS_TEST_TMPDIR"
	printf '%b' "$in" >"$BATS_TEST_TMPDIR/console.in"
	STATUS=0
	if [ "$mode" = record ]; then
		rm -f "$LOG"
		# shellcheck disable=SC2086
		timeout 60 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" "$@" \
			>"$out" 2>"$out.err" || STATUS=$?
	else
		# shellcheck disable=SC2086
		timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- "$QEMU_BIN" \
			$QEMU_FW "${GUEST_ARGV[@]}" "$@" >"$out" 2>"$out.err" || STATUS=$?
	fi
}

# console_replays VERSION: record with $INPUT, replay 2 times with no input and
# 2 times with other input; every replay's output is the recording's
console_replays() {
	use_qemu "$1"
	run_console record "$BATS_TEST_TMPDIR/rec.out" "$INPUT"
	cat "$BATS_TEST_TMPDIR/rec.out.err"
	[ "$STATUS" -eq "$GUEST_PASS" ]
	[ "$(grep -c '^con: byte' "$BATS_TEST_TMPDIR/rec.out")" -eq 24 ]
	# the log has every byte, in order, in chr_read events
	local got
	got=$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "chr_read") | .data_hex' | tr -d '\n')
	[ "$got" = "$(printf '%s' "$INPUT" | od -An -tx1 | tr -d ' \n')" ]
	for i in 1 2 3 4; do
		local in=""
		[ "$i" -le 2 ] || in='XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'
		run_console replay "$BATS_TEST_TMPDIR/rep.out" "$in"
		cat "$BATS_TEST_TMPDIR/rep.out.err"
		[ "$STATUS" -eq "$GUEST_PASS" ]
		cmp "$BATS_TEST_TMPDIR/rec.out" "$BATS_TEST_TMPDIR/rep.out"
		! grep -q divergence "$BATS_TEST_TMPDIR/rep.out.err" || false
		# whether the main loop reads live input before the guest is done is
		# the host's business: said only when it did (the mux test forces it)
		[ -n "$in" ] || ! grep -q "live input" "$BATS_TEST_TMPDIR/rep.out.err" || false
		# and its log has the same actions, console bytes included
		"$BHRR" diff "$LOG" "$BATS_TEST_TMPDIR/rep.bhlog"
		echo "QEMU $1 replay $i (live input: ${in:-none}): identical"
	done
}

@test "QEMU 7.2: console bytes replay at their recorded icounts, with no input and with other live input (4/4)" {
	console_replays 7.2
}

@test "QEMU 10.0: console bytes replay at their recorded icounts, with no input and with other live input (4/4)" {
	console_replays 10.0
}

# console_mux VERSION: the console shared with the human monitor (mux=on),
# QEMU started paused (-S): C-a c switches to the monitor, whose 'cont'
# starts the guest in the record.  The replay runs the recorded 'cont'
# (77-monitor.bats) at its first turn of the main loop, before QEMU reads
# any input; the same keystrokes typed again then reach a running VM: 'info
# status' answers live, the typed 'cont' is refused, and the guest gets only
# the recorded bytes.  Those live bytes are read in the first turns, the
# replay's dozens of recorded completions take many more: forced, not timed.
console_mux() {
	use_qemu "$1"
	local mon='-S -mon chardev=con0,mode=readline'
	guest_argv console "$BATS_TEST_TMPDIR"
	local args=("${GUEST_ARGV[@]/pipe,id=con0,/pipe,id=con0,mux=on,}")
	GUEST_ARGV=("${args[@]}")
	# shellcheck disable=SC2086
	run_mux() {
		printf '%b' "$2" >"$BATS_TEST_TMPDIR/console.in"
		: >"$BATS_TEST_TMPDIR/console.out"
		STATUS=0
		if [ "$1" = record ]; then
			rm -f "$LOG"
			timeout 60 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" $mon \
				>"$BATS_TEST_TMPDIR/$1.out" 2>"$BATS_TEST_TMPDIR/$1.err" || STATUS=$?
		else
			timeout 60 "$BHRR" replay "$LOG" -o "$BATS_TEST_TMPDIR/rep.bhlog" -- \
				"$QEMU_BIN" $QEMU_FW "${GUEST_ARGV[@]}" $mon \
				>"$BATS_TEST_TMPDIR/$1.out" 2>"$BATS_TEST_TMPDIR/$1.err" || STATUS=$?
		fi
	}
	run_mux record 'hello, \001cinfo status\ncont\n\001cbhrr! 0123456789.'
	cat "$BATS_TEST_TMPDIR/record.err"
	[ "$STATUS" -eq "$GUEST_PASS" ]
	grep -q "VM status: paused" "$BATS_TEST_TMPDIR/console.out"
	# the guest got the 24 bytes that were not the monitor's
	[ "$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "chr_read") | .bytes] | add')" -eq 24 ]
	run_mux replay 'zz\001cinfo status\ncont\n\001czz'
	cat "$BATS_TEST_TMPDIR/replay.err"
	[ "$STATUS" -eq "$GUEST_PASS" ]
	cmp "$BATS_TEST_TMPDIR/record.out" "$BATS_TEST_TMPDIR/replay.out"
	grep -q "VM status: running" "$BATS_TEST_TMPDIR/console.out"
	grep -q "a replay ignores live commands that change the guest ('cont')" \
		"$BATS_TEST_TMPDIR/console.out"
	grep -q "live input to console frontend 0 ignored" "$BATS_TEST_TMPDIR/replay.err"
	grep -q "live monitor command 'cont' ignored" "$BATS_TEST_TMPDIR/replay.err"
	# the recorded cont, typed on the HMP, as the replay ran it
	[ "$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "monitor") | .request')" = \
		'{"execute": "human-monitor-command", "arguments": {"command-line": "cont"}}' ]
}

@test "QEMU 7.2: a console shared with the monitor (-S, cont typed): the recorded cont replays, queries answer live, the guest's bytes replay" {
	console_mux 7.2
}

@test "QEMU 10.0: a console shared with the monitor (-S, cont typed): the recorded cont replays, queries answer live, the guest's bytes replay" {
	console_mux 10.0
}

# one recorded console byte changed: content cannot diverge by itself, so
# the guest's behaviour shows it (it prints the byte it got), and bhrr diff
# of the record and the replay names that chr_read as their first difference
@test "QEMU 7.2: a tampered console byte reaches the guest, which shows it; bhrr diff names that chr_read" {
	use_qemu 7.2
	run_console record "$BATS_TEST_TMPDIR/rec.out" "$INPUT"
	[ "$STATUS" -eq "$GUEST_PASS" ]
	local seq
	seq=$("$BHRR" dump --json "$LOG" | jq -s '[.[] | select(.kind == "chr_read")][0].seq')
	cp "$LOG" "$BATS_TEST_TMPDIR/orig.bhlog"
	"$BHRR_BUILDDIR/tests/helper/bhrr-test-tool" tamper "$BATS_TEST_TMPDIR/orig.bhlog" "$LOG" "$seq" byte 0
	run_console replay "$BATS_TEST_TMPDIR/rep.out" ""
	echo "replay: status $STATUS"
	# this input's other byte costs the guest no other instruction count: the
	# replay follows every recorded event to the end
	[ "$STATUS" -eq "$GUEST_PASS" ]
	cat "$BATS_TEST_TMPDIR/rep.out.err"
	# 'h' (68) became 'i' (69), after as many polls
	grep '^con: byte 0 = 68 after' "$BATS_TEST_TMPDIR/rec.out"
	[ "$(grep '^con: byte 0 = ' "$BATS_TEST_TMPDIR/rep.out")" = \
		"$(grep '^con: byte 0 = ' "$BATS_TEST_TMPDIR/rec.out" | sed 's/= 68 /= 69 /')" ]
	run "$BHRR" diff "$BATS_TEST_TMPDIR/orig.bhlog" "$BATS_TEST_TMPDIR/rep.bhlog"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "${lines[1]}" == *"event #$seq chr_read of "* ]]
}

# chardev events are input too: a telnet client connecting to the console's
# socket (opened) and sending a BREAK, which the 16550 hands the guest as a
# 0 byte with the break flag, at whatever moment the host read it.  The
# record logs both events; replays with no client give the guest the same.
@test "QEMU 7.2: a telnet client's connection and BREAK on the console are recorded as events and replayed without it (2/2)" {
	use_qemu 7.2
	local d=$BATS_TEST_TMPDIR port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	guest_argv console "$d"
	local telnet="socket,id=con0,host=127.0.0.1,port=$port,server=on,wait=off,telnet=on"
	local -a argv=("${GUEST_ARGV[@]/pipe,id=con0,path=$d\/console/$telnet}")
	# the client: connects as soon as QEMU listens, sends IAC BRK and 23 bytes
	python3 -c '
import socket, sys, time
for _ in range(1200):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.05)
s.sendall(b"\xff\xf3" + b"after the break: 23 b!.")
s.recv(1)
time.sleep(30)
' "$port" &
	local client=$! st=0
	# shellcheck disable=SC2086
	timeout 60 "$BHRR" record -o "$LOG" -- "$QEMU_BIN" $QEMU_FW "${argv[@]}" \
		>"$d/rec.out" 2>"$d/rec.err" || st=$?
	kill "$client" 2>/dev/null || true
	cat "$d/rec.err"
	[ "$st" -eq "$GUEST_PASS" ]
	# the break reached the guest as a 0 byte, before the bytes that followed it
	grep '^con: byte 0 = 0 after' "$d/rec.out"
	grep '^con: byte 1 = 61 after' "$d/rec.out"
	[ "$("$BHRR" dump --json "$LOG" | jq -r 'select(.kind == "chr_event") | .event' | tr '\n' ' ')" = "opened break " ]
	for i in 1 2; do
		guest_argv console "$d"
		st=0
		timeout 60 "$BHRR" replay "$LOG" -o "$d/rep.bhlog" >"$d/rep.out" 2>"$d/rep.err" || st=$?
		cat "$d/rep.err"
		[ "$st" -eq "$GUEST_PASS" ]
		cmp "$d/rec.out" "$d/rep.out"
		"$BHRR" diff "$LOG" "$d/rep.bhlog"
	done
}
